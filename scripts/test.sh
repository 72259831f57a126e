#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a warm one:
#   installs LocalStack (cached venv), starts it, checks formatting and lints,
#   runs every unit, snapshot and LocalStack integration test, and stops the
#   LocalStack it started. Any failure exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

started_here=0
home="${FIREBREAK_LOCALSTACK_HOME:-$HOME/.cache/firebreak/localstack}"
if ! { [[ -f "$home/localstack.pid" ]] && kill -0 "$(cat "$home/localstack.pid")" 2>/dev/null; }; then
    started_here=1
fi
endpoint="$(bash localstack/start.sh | tail -n 1)"
if [[ "$started_here" == 1 ]]; then
    trap 'bash localstack/stop.sh >/dev/null 2>&1 || true' EXIT
fi
echo "test.sh: LocalStack at $endpoint" >&2

# The HTML scorecard and incident report are checked in a real headless
# browser (tests/integration/drill.rs fails without one): install Chromium
# from the distribution's packages when it is missing.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    echo "test.sh: installing Chromium (headless browser for the HTML tests)" >&2
    if [[ "$(id -u)" == 0 ]]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# When tests fail, say what LocalStack was doing: a dead or stalled
# LocalStack fails every test after it with "not reachable", and its own
# log is the only record of why.
localstack_report() {
    local pid
    pid="$(cat "$home/localstack.pid" 2>/dev/null || true)"
    echo "test.sh: LocalStack after the failure (log: $home/localstack.log):"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        echo "  PID $pid alive: $(ls "/proc/$pid/task" | wc -l) threads," \
            "$(awk '/VmRSS/ {print $2 " kB resident"}' "/proc/$pid/status")"
    else
        echo "  PID ${pid:-?} is not running"
    fi
    if curl -s -m 5 -o /dev/null "$endpoint/_localstack/health"; then
        echo "  health: answered"
    else
        echo "  health: no answer within 5 s"
    fi
    (dmesg 2>/dev/null || true) | grep -iE "out of memory|killed process" | tail -n 5 || true
    # This run's part of the log: start.sh appends a marker per start.
    local log="$home/localstack.log" from
    from="$(grep -n '^===== start.sh ' "$log" 2>/dev/null | tail -n 1 | cut -d: -f1)"
    echo "  errors and warnings in its log (known noise left out):"
    tail -n +"${from:-1}" "$log" 2>/dev/null \
        | grep -E " (ERROR|WARN|CRITICAL) |Traceback|Error:|Fatal" \
        | grep -vE "not specified: |Signatures do not match|exception during call chain|experimental state|RESPONSE_STREAM|Connection pool is full" \
        | tail -n 25 || true
    echo "  its log's last lines:"
    tail -n 15 "$log" 2>/dev/null || true
}

status=0
FIREBREAK_TEST_ENDPOINT="$endpoint" cargo test --workspace --locked --all-targets || status=$?
if [[ "$status" != 0 ]]; then
    localstack_report >&2
fi
exit "$status"
