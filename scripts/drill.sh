#!/usr/bin/env bash
# The main job on a fresh machine: start LocalStack (installed into a cached
# venv on first use), build firebreak, and run the flagship drill end to end
# through the real alarm path: setup, attack, the alarm (SetAlarmState → SNS
# → SQS), firebreak's responder containing it, the checks read back from
# AWS, recovery; then print the scorecard and where its HTML page is.
#   scripts/drill.sh                       # the flagship, drills/compromised-function.yaml
#   scripts/drill.sh drills/cost-abuse.yaml   # any other scenario (`firebreak drill list`)
# Exit code: 0 every check passed, 7 the scorecard shows a failure, other: an error.
set -euo pipefail
cd "$(dirname "$0")/.."

scenario="${1:-drills/compromised-function.yaml}"
cargo build --quiet --locked
fb="${CARGO_TARGET_DIR:-target}/debug/firebreak"
endpoint="$(bash localstack/start.sh | tail -n 1)"
# The drill makes its own accounts (one for the run, one for the attacker);
# these settings only say where LocalStack is.
export AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=000000000042 AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
"$fb" drill run "$scenario"
