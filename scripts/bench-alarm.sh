#!/usr/bin/env bash
# Time from an alarm to its function contained, through the real path
# (not a test: it prints figures).
#
# Seeds ALARMS functions (default 20) in a fresh LocalStack account, each
# with an Errors alarm notifying one SNS topic that feeds one SQS queue;
# starts `firebreak watch` on the queue (one message at a time, so the
# split of each run's time between AWS and firebreak is exact); sets the
# alarms to ALARM one after another (SPACING_MS apart, default 500); and
# prints, per alarm and as median / p95 / max:
#   end to end   SetAlarmState sent → PutFunctionConcurrency answered (the
#                throttle's `applied` record in the incident's audit trail)
#   delivery     SetAlarmState sent → message received by watch
#   to contain   message received → PutFunctionConcurrency answered
#                (`timing.to_contain`), split into AWS's answers, pacing
#                under AWS's quotas, and firebreak's own work
#   run          the same split over the whole run (verify and seal too)
# Targets (issue 12): firebreak's own share under 50 ms per alarm, end to
# end p95 under 1 s on LocalStack.
#
# Environment:
#   FIREBREAK_TEST_ENDPOINT  LocalStack (default http://127.0.0.1:4566; started
#                            with localstack/start.sh when not healthy, never stopped)
#   ALARMS                   how many alarms (default 20)
#   SPACING_MS               pause between alarms (default 500)
#   PROFILE                  debug (default) or release
#   CARGO_TARGET_DIR         where cargo builds (as usual)
set -euo pipefail
cd "$(dirname "$0")/.."

endpoint="${FIREBREAK_TEST_ENDPOINT:-http://127.0.0.1:4566}"
alarms="${ALARMS:-20}"
spacing="${SPACING_MS:-500}"
profile="${PROFILE:-debug}"
py="$HOME/.cache/firebreak/localstack/venv/bin/python"
log() { echo "bench-alarm: $*" >&2; }

if ! curl -fsS "$endpoint/_localstack/health" >/dev/null 2>&1; then
    log "LocalStack not healthy at $endpoint; starting it"
    endpoint="$(bash localstack/start.sh | tail -n 1)"
fi
[[ -x "$py" ]] || { log "no LocalStack venv at $py (run localstack/install.sh)"; exit 1; }
if [[ "$profile" == release ]]; then
    cargo build --quiet --release --bin firebreak
else
    cargo build --quiet --bin firebreak
fi
bin="$(cd "${CARGO_TARGET_DIR:-target}/$profile" && pwd)/firebreak"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

account="7$(date +%s%N | tail -c 12 | head -c 11)"
export AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID="$account" AWS_SECRET_ACCESS_KEY=test
log "seeding $alarms functions and alarms in account $account ($profile build)"
"$py" localstack/bench_alarm.py seed "$alarms" "$work" "$(pwd)/playbooks/throttle-function.yaml" >&2
queue="$(cat "$work/queue_url")"
(cd "$work" && "$bin" --output json watch --routes routes.yaml --queue "$queue" \
    --concurrency 1 --wait 1 --until-idle 8 >watch.jsonl 2>watch.log) &
watcher=$!
sleep 1
"$py" localstack/bench_alarm.py fire "$alarms" "$work" "$spacing" >&2
wait "$watcher" || { log "watch failed:"; cat "$work/watch.log" >&2; exit 1; }
"$py" localstack/bench_alarm.py report "$work"
