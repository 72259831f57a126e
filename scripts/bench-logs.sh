#!/usr/bin/env bash
# Benchmark of logs.snapshot against LocalStack (not a test: it prints figures).
#
# For each size in SIZES (default "200000 400000"): seeds a fresh log group
# (own LocalStack account) with that many events, then snapshots it
#   1. with firebreak (logs.snapshot, default pacing of 5 requests/s), and
#   2. with the AWS CLI as the baseline: `aws logs filter-log-events`
#      paginating on its own, piped through `gzip -6` to a file,
# and prints events/s for both, the ratio, and each one's peak RSS
# (/usr/bin/time -v, "Maximum resident set size").
#
# Environment:
#   FIREBREAK_TEST_ENDPOINT  LocalStack (default http://127.0.0.1:4566; started
#                            with localstack/start.sh when not healthy, never stopped)
#   SIZES                    event counts (default "200000 400000")
#   PROFILE                  debug (default) or release: the firebreak build measured
#   RPS                      requests_per_second for firebreak (default 5)
#   CARGO_TARGET_DIR         where cargo builds (as usual)
set -euo pipefail
cd "$(dirname "$0")/.."

endpoint="${FIREBREAK_TEST_ENDPOINT:-http://127.0.0.1:4566}"
sizes="${SIZES:-200000 400000}"
profile="${PROFILE:-debug}"
rps="${RPS:-5}"
cache="$HOME/.cache/firebreak"
ls_python="$cache/localstack/venv/bin/python"
cli_venv="$cache/awscli-venv"

log() { echo "bench-logs: $*" >&2; }

if ! curl -fsS "$endpoint/_localstack/health" >/dev/null 2>&1; then
    log "LocalStack not healthy at $endpoint; starting it"
    endpoint="$(bash localstack/start.sh | tail -n 1)"
fi
[[ -x "$ls_python" ]] || { log "no LocalStack venv at $ls_python (run localstack/install.sh)"; exit 1; }
if [[ ! -x "$cli_venv/bin/aws" ]]; then
    log "installing the AWS CLI into $cli_venv"
    "$ls_python" -m venv "$cli_venv"
    "$cli_venv/bin/pip" install -q awscli
fi
[[ -x /usr/bin/time ]] || { log "/usr/bin/time is needed for peak RSS (apt-get install time)"; exit 1; }

if [[ "$profile" == release ]]; then
    cargo build --quiet --release --bin firebreak
else
    cargo build --quiet --bin firebreak
fi
bin="${CARGO_TARGET_DIR:-target}/$profile/firebreak"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Seconds (float) a command takes; its /usr/bin/time -v report goes to $1,
# its stdout to $2.
timed() {
    local report="$1" out="$2"; shift 2
    local t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -v -o "$report" "$@" >"$out"
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}'
}
rss_mib() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$1"; }

printf '%-8s %-10s %10s %12s %10s %14s\n' events tool seconds "events/s" "peak MiB" "output MiB"
for n in $sizes; do
    account="$(printf '7%011d' $(( (RANDOM * 32768 + RANDOM) % 100000000000 )))"
    function="bench-$n"
    group="/aws/lambda/$function"
    bucket="fb-bench-$account"
    export AWS_ACCESS_KEY_ID="$account" AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
        AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL="$endpoint" AWS_EC2_METADATA_DISABLED=true
    read -r start_ms end_ms < <("$ls_python" - "$n" "$group" "$bucket" "$endpoint" <<'PY'
import hashlib, sys, time
import boto3
n, group, bucket, endpoint = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
logs = boto3.client("logs", endpoint_url=endpoint)
boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
logs.create_log_group(logGroupName=group)
logs.create_log_stream(logGroupName=group, logStreamName="bench")
base = int(time.time() * 1000) - 60_000 - n
t0 = time.time()
for lo in range(0, n, 10_000):
    events = [
        {"timestamp": base + i,
         "message": f"START RequestId: {hashlib.md5(str(i).encode()).hexdigest()} Version: $LATEST level=INFO n={i}"}
        for i in range(lo, min(n, lo + 10_000))
    ]
    logs.put_log_events(logGroupName=group, logStreamName="bench", logEvents=events)
print(f"seeded {n} events in {time.time() - t0:.1f} s", file=sys.stderr)
print(base - 1, int(time.time() * 1000))
PY
)
    cat > "$work/pb.yaml" <<YAML
apiVersion: firebreak/v1
kind: Playbook
name: bench-logs
phases:
  identify:
    - id: logs
      action: logs.snapshot
      with:
        function: $function
        bucket: $bucket
        requests_per_second: $rps
YAML
    fb_secs=$(cd "$work" && timed "$work/fb.time" "$work/fb.out" "$bin" --output json run pb.yaml --incident "INC-BENCH-$n" --yes)
    fb_events=$("$ls_python" - "$bucket" "$endpoint" <<'PY'
import json, sys
import boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[2])
keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[1]) for o in p.get("Contents", [])]
summary = next(k for k in keys if k.endswith("/summary.json"))
s = json.loads(s3.get_object(Bucket=sys.argv[1], Key=summary)["Body"].read())
print(s["events"], sum(p["size"] for p in s["parts"]))
PY
)
    read -r fb_count fb_bytes <<<"$fb_events"

    cli_secs=$(timed "$work/cli.time" /dev/null bash -c "'$cli_venv/bin/aws' --endpoint-url '$endpoint' logs filter-log-events \
        --log-group-name '$group' --start-time $start_ms --end-time $end_ms --output json | gzip -6 > '$work/cli.json.gz'")
    cli_count=$(gzip -dc "$work/cli.json.gz" | "$ls_python" -c 'import json,sys; print(len(json.load(sys.stdin)["events"]))')
    cli_bytes=$(stat -c %s "$work/cli.json.gz")

    [[ "$fb_count" == "$n" && "$cli_count" == "$n" ]] || { log "event counts differ: seeded $n, firebreak $fb_count, CLI $cli_count"; exit 1; }
    fb_rate=$(awk -v n="$n" -v s="$fb_secs" 'BEGIN {printf "%.0f", n / s}')
    cli_rate=$(awk -v n="$n" -v s="$cli_secs" 'BEGIN {printf "%.0f", n / s}')
    printf '%-8s %-10s %10s %12s %10s %14s\n' "$n" "firebreak" "$fb_secs" "$fb_rate" "$(rss_mib "$work/fb.time")" \
        "$(awk -v b="$fb_bytes" 'BEGIN {printf "%.1f", b / 1048576}')"
    printf '%-8s %-10s %10s %12s %10s %14s\n' "$n" "aws-cli" "$cli_secs" "$cli_rate" "$(rss_mib "$work/cli.time")" \
        "$(awk -v b="$cli_bytes" 'BEGIN {printf "%.1f", b / 1048576}')"
    printf '%-8s ratio firebreak/aws-cli: %.2fx; firebreak peak RSS %s MiB (%s build, %s requests/s)\n' "$n" \
        "$(awk -v a="$fb_rate" -v b="$cli_rate" 'BEGIN {print a / b}')" "$(rss_mib "$work/fb.time")" "$profile" "$rps"
done
