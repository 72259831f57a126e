#!/usr/bin/env bash
# The main job, end to end against LocalStack on this machine:
#   start LocalStack, create a sample function, then plan, run, run again
#   (no changes), verify the audit trail and recover, printing each result;
#   then the full lambda-compromise playbook with evidence to a forensic
#   bucket, `evidence verify`, and recover.
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

# The full playbook: capture the configuration, contain, then collect code
# and logs into a forensic bucket with Object Lock, and verify the evidence.
# CloudTrail is skipped: LocalStack community has no CloudTrail API (the
# trail-bucket path is covered by tests/integration/cloudtrail.rs).
full=playbooks/lambda-compromise.yaml
incident2="INC-FULL-$(date +%H%M%S)"
function2="$function-full"
bucket="firebreak-demo-evidence"
say "create a second function, a forensic bucket with Object Lock and the function's logs"
"$py" localstack/seed_function.py "$function2"
"$py" localstack/seed_evidence.py "$function2" "$bucket"
args=(--incident "$incident2" -p function="$function2" -p forensic_bucket="$bucket" -p collect_cloudtrail=false -p scope=role)
run "$fb" --state-dir "$state" plan "$full" "${args[@]}"
run "$fb" --state-dir "$state" run "$full" "${args[@]}" --yes
run "$fb" --state-dir "$state" run "$full" "${args[@]}" --yes
run "$fb" --state-dir "$state" evidence verify --incident "$incident2" --bucket "$bucket"
say "the evidence in s3://$bucket/$incident2/"
"$py" - "$bucket" "$incident2" <<'PY'
import os, sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], config=Config(s3={"addressing_style": "path"}))
for o in s3.list_objects_v2(Bucket=sys.argv[1], Prefix=sys.argv[2] + "/").get("Contents", []):
    print(f"{o['Size']:>8}  {o['Key']}")
PY
run "$fb" --state-dir "$state" recover --incident "$incident2" --yes
run "$fb" audit verify "$state/incidents/$incident2"
echo
echo "LocalStack keeps running at $endpoint; stop it with localstack/stop.sh"
