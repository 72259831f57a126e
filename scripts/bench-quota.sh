#!/usr/bin/env bash
# Containing N functions at the AWS quota limit, side by side with Cloud
# Custodian and a plain `aws lambda put-function-concurrency` loop (not a
# test: it prints figures). One command on a fresh machine:
#
#   bash scripts/bench-quota.sh
#
# For each N in SIZES (default "1 100 1000"): starts a fresh LocalStack of
# its own (own data directory and port, stopped afterwards), seeds N
# functions each with a public statement and an admin role (managed and
# inline policies); then for each LATENCY (default "30 100" ms per call)
# and each tool: puts every function back as seeded, starts the AWS-like
# proxy (tools/aws-proxy: Lambda 15/s, GetFunction 100/s, GetPolicy 15/s,
# IAM 20/s, answered as AWS answers over-quota callers; time compressed
# COMPRESS times, default 10), runs the tool through it, and reads the end
# state back from LocalStack directly. Prints one table: wall time, the
# quota bound (the playbook's minimum control-plane calls at 15/s,
# compressed: N throttles, plus N statement removals for full containment),
# the ratio, calls made and throttled, the end state, and closed: start to
# the last throttle, statement removal or URL deletion answered, when the
# end state is contained (what the bound counts, for every tool alike).
#
# Tools: firebreak (tests/playbooks/contain-only.yaml: describe, throttle,
# close public access, quarantine the role; its quotas compressed like the
# proxy's), Cloud Custodian (c7n from PyPI in a venv
# this script makes: set-concurrency 0, remove-statements for
# cross-account statements, roles set-policy detached), and the AWS CLI
# (one put-function-concurrency per function, one after another).
#
# With SHARED=1 (the default) each size also seeds N functions on ONE
# shared role and times, for firebreak and Cloud Custodian at the first
# latency, how long until the first change to that role is answered (harm
# stopped: one deny stops every function on the role), for N up to
# SHARED_MAX (default 200: the second fleet doubles LocalStack's functions).
# firebreak also runs on that fleet as an alarm would start it (fb-named:
# one function named, `--param scope=role`): its role's deny stops all N,
# and the region's listing is not waited for (only that function is
# throttled, so its end state shows N - 1 functions not at 0).
# With OWN_ROLES empty (default 1) the fleet with a role per function is
# skipped, so `SIZES=1000 OWN_ROLES= SHARED_MAX=1000` times harm stopped on
# one role shared by 1,000 functions, with 1,000 functions in the region.
#
# fb-throttle is firebreak with playbooks/throttle-function.yaml (describe,
# throttle), the same job as the CLI loop: its bound is N
# PutFunctionConcurrency at 15/s, not 2N. fb-full (not in the default
# TOOLS) is firebreak with the shipped playbooks/lambda-compromise.yaml
# (indicators and configuration preserved first, then containment,
# secrets, tags, code and logs; no CloudTrail, which LocalStack lacks),
# into a forensic bucket the script creates.
#
# Environment: SIZES, LATENCIES, COMPRESS, TOOLS (default "firebreak
# fb-throttle custodian cli"), SHARED (1, or empty to skip), CONCURRENCY
# (firebreak's --concurrency, targets worked on at once; empty: its
# default), PROFILE (release, default, or debug), CARGO_TARGET_DIR,
# BENCH_TRACES (a directory: every request of each run, from the proxy's
# --trace), BENCH_RESULTS (where the per-API counts go), FREEZE_HEAP (1,
# the default, or empty: see below).
#
# LocalStack is one Python process; holding 1,000 seeded functions, each of
# its full garbage collections stops every request for 0.6-0.75 s (measured
# with a gc callback, one every 20-40 s under load), which AWS does not do,
# and one falling in a run's first second decides its harm-stopped figure.
# With FREEZE_HEAP=1 the benchmark's LocalStack (only it: PYTHONPATH names
# localstack/bench-python) moves its heap into Python's permanent
# generation once seeded (gc.freeze), so later collections walk only what
# the runs allocate; the table's `gc` column gives the longest collection
# over 100 ms during each run (from FIREBREAK_GC_LOG), whatever FREEZE_HEAP.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

sizes="${SIZES:-1 100 1000}"
latencies="${LATENCIES:-30 100}"
compress="${COMPRESS:-10}"
tools="${TOOLS:-firebreak fb-throttle custodian cli}"
shared="${SHARED:-1}"
shared_max="${SHARED_MAX:-200}"
own_roles="${OWN_ROLES-1}"
profile="${PROFILE:-release}"
fb_concurrency=()
[[ -n "${CONCURRENCY:-}" ]] && fb_concurrency=(--concurrency "$CONCURRENCY")
port="${BENCH_LOCALSTACK_PORT:-4610}"
# Each run's requests go to TOOL-N-LATENCY[-shared].jsonl there.
traces="${BENCH_TRACES:-}"
freeze_heap="${FREEZE_HEAP-1}"
[[ -n "$traces" ]] && mkdir -p "$traces"
proxy_port="${BENCH_PROXY_PORT:-4611}"
log() { echo "bench-quota: $*" >&2; }

# LocalStack's venv (shared with the tests) and the tools' venv.
bash localstack/install.sh >&2
ls_venv="$HOME/.cache/firebreak/localstack/venv"
py="$ls_venv/bin/python"
tools_venv="$HOME/.cache/firebreak/bench-venv"
if [[ ! -x "$tools_venv/bin/custodian" || ! -x "$tools_venv/bin/aws" ]]; then
    log "installing Cloud Custodian and the AWS CLI into $tools_venv"
    python3 -m venv "$tools_venv"
    "$tools_venv/bin/pip" install --disable-pip-version-check -q "c7n==0.9.*" "awscli==1.*"
fi

# Two builds: `--bin` applies to every `-p`, so one command with both
# packages and `--bin firebreak` leaves the proxy's binary out.
release=()
[[ "$profile" == release ]] && release=(--release)
cargo build --quiet ${release[@]+"${release[@]}"} -p firebreak --bin firebreak
cargo build --quiet ${release[@]+"${release[@]}"} -p firebreak-aws-proxy --bins
bindir="$(cd "${CARGO_TARGET_DIR:-target}/$profile" && pwd)"
work="$(mktemp -d)"
ls_home="$work/localstack"
cleanup() {
    [[ -n "${proxy_pid:-}" ]] && kill "$proxy_pid" 2>/dev/null || true
    FIREBREAK_LOCALSTACK_HOME="$ls_home" bash localstack/stop.sh >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# firebreak paces itself to the quotas the proxy enforces: AWS's, compressed.
awk -v f="$compress" 'BEGIN {
    print "quotas:"
    printf "  lambda: {rate: %g, burst: 10}\n", 15 * f
    printf "  lambda_get_function: {rate: %g, burst: 10}\n", 100 * f
    printf "  lambda_get_policy: {rate: %g, burst: 10}\n", 15 * f
    printf "  iam: {rate: %g, burst: 10}\n", 20 * f
    printf "  sts: {rate: %g, burst: 10}\n", 50 * f
}' >"$work/quotas.yaml"

# firebreak exited non-zero: say why before the work directory goes (its
# stderr's last lines, and the JSON report's status, errors, failed checks and aborted steps).
fb_failed() {
    log "firebreak exited $1 (see the end state); its last words: $(tail -n 3 "$work/firebreak.err")"
    "$py" - "$work/firebreak.json" >&2 <<'PY' || true
import collections, json, re, sys
try:
    r = json.load(open(sys.argv[1]))
except (OSError, ValueError) as e:
    sys.exit(f"bench-quota: no JSON report ({e})")
print(f"bench-quota: firebreak's status: {r.get('status')}")
fails = r.get("errors") or []
checks = [c for c in r.get("verification") or [] if c.get("passed") is False]
aborted = r.get("aborted") or []
for what, items in (("failures", fails), ("checks failed", checks), ("aborted", aborted)):
    if not items:
        continue
    # Group alike messages (names and numbers blanked): a thousand targets
    # fail the same way.
    def gist(i):
        m = i.get("message") or i.get("detail") or json.dumps({k: v for k, v in i.items() if k != "function"})
        return re.sub(r"\d+", "N", m)
    by = collections.Counter((i.get("step"), gist(i)) for i in items)
    print(f"bench-quota: {len(items)} {what}:")
    for (step, msg), k in by.most_common(5):
        print(f"  {k} x {step}: {msg[:300]}")
PY
}

# One tool over N functions named PREFIX-0000..., through a fresh proxy;
# appends a row to $results. SHARED: the functions share one role.
bench_one() {
    local prefix="$1" n="$2" latency="$3" tool="$4" shared_role="$5"
    export SHARED_ROLE="$shared_role"
    AWS_ENDPOINT_URL="$endpoint" "$py" localstack/bench_quota.py reset "$prefix" "$n"
    "$bindir/firebreak-aws-proxy" --listen "127.0.0.1:$proxy_port" --upstream "$endpoint" \
        --latency-ms "$latency" --compress "$compress" --report "$work/proxy.json" \
        ${traces:+--trace "$traces/$tool-$n-${latency}ms${shared_role:+-shared}.jsonl"} \
        >"$work/proxy.out" 2>"$work/proxy.err" &
    proxy_pid=$!
    for _ in $(seq 1 50); do [[ -s "$work/proxy.out" ]] && break; sleep 0.1; done
    if [[ ! -s "$work/proxy.out" ]]; then
        log "the AWS-like proxy did not start: $(cat "$work/proxy.err")"
        exit 1
    fi
    local proxy
    proxy="$(head -n 1 "$work/proxy.out")"
    log "N=$n latency=${latency}ms: $tool${shared_role:+ (one shared role)}"
    local t0 t1
    t0=$(date +%s.%N)
    case "$tool" in
    firebreak)
        AWS_ENDPOINT_URL="$proxy" "$bindir/firebreak" --state-dir "$work/state-$prefix-$n-$latency" \
            --quotas "$work/quotas.yaml" --output json run tests/playbooks/contain-only.yaml \
            --incident "BENCH-$prefix-$n-$latency" --target "$prefix-*" --max-targets "$n" \
            ${fb_concurrency[@]+"${fb_concurrency[@]}"} --param scope=role --yes >"$work/firebreak.json" 2>"$work/firebreak.err" \
            || fb_failed $?
        ;;
    fb-throttle)
        # The throttle-only playbook: its bound is N PutFunctionConcurrency.
        AWS_ENDPOINT_URL="$proxy" "$bindir/firebreak" --state-dir "$work/state-$prefix-$n-$latency-throttle" \
            --quotas "$work/quotas.yaml" --output json run playbooks/throttle-function.yaml \
            --incident "BENCH-$prefix-$n-$latency-throttle" --target "$prefix-*" --max-targets "$n" \
            ${fb_concurrency[@]+"${fb_concurrency[@]}"} --yes >"$work/firebreak.json" 2>"$work/firebreak.err" \
            || fb_failed $?
        ;;
    fb-full)
        # The shipped playbook (evidence first, then containment, secrets,
        # tags and code): what a responder runs on a fleet. No CloudTrail
        # (LocalStack has no LookupEvents and no trail here) and no logs
        # (the seeded functions never ran, so they have no log group).
        AWS_ENDPOINT_URL="$endpoint" "$tools_venv/bin/aws" s3api create-bucket \
            --bucket "bench-evidence-$account" --object-lock-enabled-for-bucket >/dev/null 2>&1 || true
        AWS_ENDPOINT_URL="$proxy" "$bindir/firebreak" --state-dir "$work/state-$prefix-$n-$latency-full" \
            --quotas "$work/quotas.yaml" --output json run playbooks/lambda-compromise.yaml \
            --incident "BENCH-$prefix-$n-$latency-full" --target "$prefix-*" --max-targets "$n" \
            ${fb_concurrency[@]+"${fb_concurrency[@]}"} --param scope=role \
            --param "forensic_bucket=bench-evidence-$account" --param cloudtrail_api=false \
            --param collect_cloudtrail=false --param collect_logs=false --yes >"$work/firebreak.json" 2>"$work/firebreak.err" \
            || fb_failed $?
        ;;
    fb-named)
        # The alarm's case: one function named, its role shared by all N.
        AWS_ENDPOINT_URL="$proxy" "$bindir/firebreak" --state-dir "$work/state-$prefix-$n-$latency-named" \
            --quotas "$work/quotas.yaml" --output json run tests/playbooks/contain-only.yaml \
            --incident "BENCH-$prefix-$n-$latency-named" --target "$(printf '%s-%04d' "$prefix" 0)" \
            --param scope=role --yes >"$work/firebreak.json" 2>"$work/firebreak.err" \
            || fb_failed $?
        ;;
    custodian)
        AWS_ENDPOINT_URL="$endpoint" "$py" localstack/bench_quota.py custodian-policy "$prefix" "$work/c7n.yml"
        AWS_ENDPOINT_URL="$proxy" "$tools_venv/bin/custodian" run --cache-period 0 -s "$work/c7n-out" \
            --region us-east-1 "$work/c7n.yml" >"$work/c7n.log" 2>&1 \
            || log "custodian exited $? (see the end state and $work/c7n.log)"
        ;;
    cli)
        for i in $(seq 0 $((n - 1))); do
            "$tools_venv/bin/aws" --endpoint-url "$proxy" lambda put-function-concurrency \
                --function-name "$(printf '%s-%04d' "$prefix" "$i")" --reserved-concurrent-executions 0 >/dev/null
        done
        ;;
    esac
    t1=$(date +%s.%N)
    kill -TERM "$proxy_pid" && wait "$proxy_pid" 2>/dev/null || true
    proxy_pid=""
    local state
    state="$(AWS_ENDPOINT_URL="$endpoint" "$py" localstack/bench_quota.py state "$prefix" "$n")"
    "$py" - "$work/proxy.json" "$n" "$latency" "$tool" "$t0" "$t1" "$compress" "$state" "$shared_role" "$work/firebreak.json" "$work/gc.log" >>"$results" <<'PY'
import json, sys
report, n, latency, tool, t0, t1, compress, state, shared, fb, gc_log = sys.argv[1:]
r = json.load(open(report))
# firebreak verifies after containing; the others stop when they have
# sent their changes. Contained: firebreak's own timings.contained_ms
# (planning and the harm-stopping pass), the others' wall time.
contained = float(t1) - float(t0)
own = None
if tool in ("firebreak", "fb-named", "fb-throttle", "fb-full"):
    try:
        timings = json.load(open(fb))["timings"]
        contained = timings["contained_ms"] / 1000.0
        # Process start to contained minus AWS's answers and pacing
        # (exact for one target: round trips overlap with several).
        own = timings["to_contained"]["own_ms"]
    except (OSError, ValueError, KeyError, TypeError):
        contained = None
n, compress = int(n), float(compress)
# The bound is the playbook's minimum control-plane calls at 15/s:
# throttle-only (the CLI loop, fb-throttle) N PutFunctionConcurrency; full
# containment also the N public statements' removals.
min_calls = n if tool in ("cli", "fb-throttle") else 2 * n
role_changes = [v.get("first_answered_ms") for k, v in r["by_api"].items()
                if k in ("iam:PutRolePolicy", "iam:DetachRolePolicy", "iam:DeleteRolePolicy")]
role_changes = [t for t in role_changes if t is not None]
harm = (min(role_changes) / 1000.0 - float(t0)) if shared and role_changes else None
# A role each: harm is stopped when every function is at concurrency 0
# (none can run), the last PutFunctionConcurrency answered.
puts = r["by_api"].get("lambda:PutFunctionConcurrency", {})
if not shared and puts.get("last_answered_ms") and json.loads(state)["at_zero"] == n:
    harm = puts["last_answered_ms"] / 1000.0 - float(t0)
# Closed: start to the last containment change answered (throttle,
# statement removal, URL deletion), when the end state read back from
# LocalStack is contained; what the bound counts.
st = json.loads(state)
changes = [v.get("last_answered_ms") for k, v in r["by_api"].items()
           if k in ("lambda:PutFunctionConcurrency", "lambda:RemovePermission",
                    "lambda:DeleteFunctionUrlConfig")]
changes = [t for t in changes if t is not None]
done = st["at_zero"] == n and (min_calls == n or st["public_left"] == 0)
closed = (max(changes) / 1000.0 - float(t0)) if changes and done else None
# LocalStack's full collections over 100 ms during the run (epoch seconds,
# generation, milliseconds a line).
pauses = []
try:
    for line in open(gc_log):
        at, _, took = line.split()
        if float(t0) <= float(at) <= float(t1) and int(took.rstrip("ms")) > 100:
            pauses.append(int(took.rstrip("ms")))
except (OSError, ValueError):
    pass
print(json.dumps({
    "ls_gc_pauses_ms": pauses,
    "n": n, "latency_ms": int(latency), "tool": tool, "shared": bool(shared),
    "wall_s": float(t1) - float(t0), "contained_s": contained, "closed_s": closed,
    "bound_s": min_calls / (15 * compress),
    "calls": r["requests"], "min_calls": min_calls, "throttled": r["throttled"],
    "harm_stopped_s": harm, "own_ms": own,
    "by_api": r["by_api"], "state": json.loads(state),
}))
PY
}

# FREEZE_HEAP: the seeded heap into Python's permanent generation (see the
# header); gc.collect and gc.freeze run in LocalStack's main thread, so
# the benchmark waits until a GetAccountSettings is answered again.
freeze() {
    [[ -n "$freeze_heap" ]] || return 0
    kill -USR2 "$(cat "$ls_home/localstack.pid")"
    sleep 2
    AWS_ENDPOINT_URL="$endpoint" "$py" -c 'import boto3; boto3.client("lambda").get_account_settings()'
}

results="$work/results.jsonl"
: >"$results"
for n in $sizes; do
    # A fresh LocalStack per size: host-mode LocalStack keeps two threads
    # per function version and stalls past about 1,300 threads.
    FIREBREAK_LOCALSTACK_HOME="$ls_home" bash localstack/stop.sh >/dev/null 2>&1 || true
    rm -rf "$ls_home" && mkdir -p "$ls_home" && ln -s "$ls_venv" "$ls_home/venv"
    endpoint="$(PYTHONPATH="$root/localstack/bench-python" FIREBREAK_GC_LOG="$work/gc.log" \
        FIREBREAK_LOCALSTACK_HOME="$ls_home" FIREBREAK_LOCALSTACK_PORT="$port" bash localstack/start.sh | tail -n 1)"
    account="9$(date +%s%N | tail -c 12 | head -c 11)"
    export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID="$account" AWS_SECRET_ACCESS_KEY=test
    if [[ -n "$own_roles" ]]; then
        log "N=$n: seeding in a fresh LocalStack ($endpoint), account $account"
        export SHARED_ROLE=""
        AWS_ENDPOINT_URL="$endpoint" "$py" localstack/seed_fleet.py bq "$n" >&2
        freeze
        for latency in $latencies; do
            for tool in $tools; do
                bench_one bq "$n" "$latency" "$tool" ""
            done
        done
    fi
    if [[ -n "$shared" && "$n" -le "$shared_max" ]]; then
        # The blast-radius case: N functions on one role, where one deny
        # stops them all. Timed to the first change to the role answered.
        log "N=$n: seeding $n functions on one shared role"
        SHARED_ROLE=1 AWS_ENDPOINT_URL="$endpoint" "$py" localstack/seed_fleet.py bs "$n" >&2
        freeze
        latency="${latencies%% *}"
        for tool in $tools; do
            [[ "$tool" == cli || "$tool" == fb-throttle ]] && continue
            bench_one bs "$n" "$latency" "$tool" 1
            # And as an alarm would start it: one function named.
            [[ "$tool" == firebreak ]] && bench_one bs "$n" "$latency" fb-named 1
        done
    fi
    FIREBREAK_LOCALSTACK_HOME="$ls_home" bash localstack/stop.sh >/dev/null 2>&1 || true
done
echo "containing N functions through the AWS-like proxy (time compressed ${compress}x${CONCURRENCY:+, firebreak --concurrency $CONCURRENCY}), $(date -u +%F)"
"$py" localstack/bench_quota.py table "$results"
cp "$results" "${BENCH_RESULTS:-/tmp/bench-quota.jsonl}"
log "per-API counts of every run: ${BENCH_RESULTS:-/tmp/bench-quota.jsonl}"
