#!/usr/bin/env bash
# Renders a CloudFormation template for the Lambda responder from
# deploy/firebreak.template.yaml: the role's policy is exactly what
# `firebreak permissions --routes ROUTES --state STATE --queue QUEUE` prints,
# and the queue, the state bucket and the function's configuration match it.
#
#   deploy/render.sh --routes routes/prod.yaml \
#       --state s3://acme-ir-state/incidents \
#       --queue arn:aws:sqs:us-east-1:111122223333:firebreak-events \
#       [--out deploy/firebreak.yaml]
#
# FIREBREAK names the firebreak binary (default: `firebreak` on PATH).
# The checked-in deploy/firebreak.yaml is rendered for routes/example.yaml;
# a test re-renders it from the inputs in its Metadata and compares.
set -euo pipefail

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

routes="" state="" queue="" out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --routes) routes=${2:-}; shift 2 ;;
        --state) state=${2:-}; shift 2 ;;
        --queue) queue=${2:-}; shift 2 ;;
        --out) out=${2:-}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "render.sh: unknown argument \`$1\`" >&2; usage >&2; exit 64 ;;
    esac
done
if [ -z "$routes" ] || [ -z "$state" ] || [ -z "$queue" ]; then
    echo "render.sh: --routes, --state and --queue are required" >&2
    usage >&2
    exit 64
fi

here=$(cd "$(dirname "$0")" && pwd)
template="$here/firebreak.template.yaml"
out=${out:-$here/firebreak.yaml}
firebreak=${FIREBREAK:-firebreak}

if [[ ! "$state" =~ ^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/([A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*))?/?$ ]]; then
    echo "render.sh: --state \`$state\` is not s3://BUCKET/PREFIX (the bucket the stack creates, and a prefix of letters, digits, \`-\`, \`_\`, \`.\` and \`/\`)" >&2
    exit 64
fi
bucket=${BASH_REMATCH[1]}
prefix=${BASH_REMATCH[3]}
state="s3://$bucket${prefix:+/$prefix}"

if [[ ! "$queue" =~ ^arn:(aws|aws-cn|aws-us-gov):sqs:[a-z0-9-]+:[0-9]{12}:([A-Za-z0-9_-]{1,75})$ ]]; then
    echo "render.sh: --queue \`$queue\` is not the ARN of a standard SQS queue (arn:aws:sqs:REGION:ACCOUNT:NAME, at most 75 characters so that NAME-dlq fits)" >&2
    exit 64
fi
queue_name=${BASH_REMATCH[2]}

# Exits non-zero (and says why) on invalid routes: nothing is written then.
policy=$("$firebreak" permissions --routes "$routes" --state "$state" --queue "$queue")

FB_POLICY=$policy FB_ROUTES=$routes FB_STATE=$state FB_BUCKET=$bucket \
FB_QUEUE_ARN=$queue FB_QUEUE_NAME=$queue_name \
awk '
function replace_all(s, find, repl,    out, i) {
    out = ""
    while ((i = index(s, find)) > 0) {
        out = out substr(s, 1, i - 1) repl
        s = substr(s, i + length(find))
    }
    return out s
}
/^[ ]*@@POLICY@@[ ]*$/ {
    indent = $0
    sub(/@@POLICY@@.*/, "", indent)
    n = split(ENVIRON["FB_POLICY"], lines, "\n")
    for (k = 1; k <= n; k++) print indent lines[k]
    next
}
{
    line = $0
    line = replace_all(line, "@@GENERATED@@", "Rendered by deploy/render.sh from deploy/firebreak.template.yaml: edit that, then render again.")
    line = replace_all(line, "@@ROUTES@@", ENVIRON["FB_ROUTES"])
    line = replace_all(line, "@@STATE_BUCKET@@", ENVIRON["FB_BUCKET"])
    line = replace_all(line, "@@STATE@@", ENVIRON["FB_STATE"])
    line = replace_all(line, "@@QUEUE_ARN@@", ENVIRON["FB_QUEUE_ARN"])
    line = replace_all(line, "@@QUEUE_NAME@@", ENVIRON["FB_QUEUE_NAME"])
    print line
}' "$template" >"$out.tmp"
mv "$out.tmp" "$out"
echo "rendered $out" >&2
