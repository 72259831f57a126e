#!/usr/bin/env bash
# The main job, end to end against LocalStack on this machine:
#   start LocalStack, create a sample function, then plan, run, run again
#   (no changes), verify the audit trail and recover, printing each result.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --locked
fb="${CARGO_TARGET_DIR:-target}/debug/firebreak"
endpoint="$(bash localstack/start.sh | tail -n 1)"
export AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=000000000042 AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
py="${FIREBREAK_LOCALSTACK_HOME:-$HOME/.cache/firebreak/localstack}/venv/bin/python"
state="$(mktemp -d)"
function="demo-$(date +%s)"
incident="INC-DEMO-$(date +%H%M%S)"
pb=playbooks/throttle-function.yaml

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; set +e; "$@"; code=$?; set -e; echo "(exit $code)"; }

say "create a sample Lambda function in LocalStack"
"$py" localstack/seed_function.py "$function"
run "$fb" validate "$pb"
run "$fb" --state-dir "$state" plan "$pb" --incident "$incident" -p function="$function"
run "$fb" --state-dir "$state" run "$pb" --incident "$incident" -p function="$function" --yes
run "$fb" --state-dir "$state" run "$pb" --incident "$incident" -p function="$function" --yes
run "$fb" audit verify "$state/incidents/$incident"
run "$fb" --state-dir "$state" run "$pb" --incident "$incident" -p function="$function" --yes --phase recover
run "$fb" audit verify "$state/incidents/$incident"
say "the incident's state: $state/incidents/$incident"
ls -l "$state/incidents/$incident"
echo
echo "LocalStack keeps running at $endpoint; stop it with localstack/stop.sh"
