#!/usr/bin/env bash
# API calls per function for containment (not a test: it prints figures).
#
# For each N in SIZES (default "20 200"): seeds N functions in a fresh
# LocalStack account (each with its own role carrying an admin managed and
# inline policy, and a public statement), then runs
# tests/playbooks/contain-only.yaml (describe, throttle, close public
# access, quarantine the role) against all of them with `--target` and
# prints, from the run's own call-path counts (`api_calls`), the calls per
# function in total and per operation. The figure must not grow with N:
# what every target needs (the region's functions, for blast radius and
# the glob) is read once per run.
#
# Environment:
#   FIREBREAK_TEST_ENDPOINT  LocalStack (default http://127.0.0.1:4566; started
#                            with localstack/start.sh when not healthy, never stopped)
#   SIZES                    function counts (default "20 200")
#   CARGO_TARGET_DIR         where cargo builds (as usual)
set -euo pipefail
cd "$(dirname "$0")/.."

endpoint="${FIREBREAK_TEST_ENDPOINT:-http://127.0.0.1:4566}"
sizes="${SIZES:-20 200}"
py="$HOME/.cache/firebreak/localstack/venv/bin/python"
log() { echo "bench-contain-cost: $*" >&2; }

if ! curl -fsS "$endpoint/_localstack/health" >/dev/null 2>&1; then
    log "LocalStack not healthy at $endpoint; starting it"
    endpoint="$(bash localstack/start.sh | tail -n 1)"
fi
[[ -x "$py" ]] || { log "no LocalStack venv at $py (run localstack/install.sh)"; exit 1; }
cargo build --quiet --bin firebreak
bin="${CARGO_TARGET_DIR:-target}/debug/firebreak"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for n in $sizes; do
    account="8$(date +%s%N | tail -c 12 | head -c 11)"
    export AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID="$account" AWS_SECRET_ACCESS_KEY=test
    log "N=$n: seeding in account $account"
    "$py" localstack/seed_fleet.py cost "$n" >&2
    t0=$(date +%s.%N)
    code=0
    "$bin" --state-dir "$work/state-$n" --output json run tests/playbooks/contain-only.yaml \
        --incident "BENCH-$n" --target 'cost-*' --max-targets "$n" --yes >"$work/run-$n.json" || code=$?
    t1=$(date +%s.%N)
    "$py" - "$work/run-$n.json" "$n" "$code" "$t0" "$t1" <<'PY'
import json, sys
path, n, code, t0, t1 = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
v = json.load(open(path))
calls = v["api_calls"]
print(f"N={n}: exit {code}, status {v['status']}, wall {t1 - t0:.1f} s, "
      f"{calls['total']} calls ({calls['total'] / n:.2f} per function), "
      f"{calls['mutating']} mutating, {calls['throttled']} throttled; "
      f"checks {v['summary']['checks_passed']} passed, {v['summary']['checks_failed']} failed")
for op, c in sorted(calls["by_operation"].items()):
    print(f"    {op:40s} {c['calls']:6d}  {c['calls'] / n:6.2f}/function")
PY
done
