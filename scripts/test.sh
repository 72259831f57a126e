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
FIREBREAK_TEST_ENDPOINT="$endpoint" cargo test --workspace --locked --all-targets
