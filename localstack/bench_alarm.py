"""Driver for scripts/bench-alarm.sh: seed, fire the alarms, report."""
import json
import os
import statistics
import sys
import time
import zipfile
import io
from datetime import datetime

import boto3

ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
KW = dict(endpoint_url=ENDPOINT, region_name="us-east-1")


def client(name):
    return boto3.client(name, **KW)


def names(n):
    return [f"orders-bench-{i}" for i in range(n)]


def seed(n, work, playbook):
    lam, sns, sqs, cw = client("lambda"), client("sns"), client("sqs"), client("cloudwatch")
    account = os.environ["AWS_ACCESS_KEY_ID"]
    topic = sns.create_topic(Name="bench-alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName="bench-alarms")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(e, c):\n    return 1\n")
    code = buf.getvalue()
    for f in names(n):
        lam.create_function(FunctionName=f, Runtime="python3.12", Role=f"arn:aws:iam::{account}:role/bench",
                            Handler="handler.handler", Code={"ZipFile": code})
    for f in names(n):
        while lam.get_function_configuration(FunctionName=f).get("State") != "Active":
            time.sleep(0.1)
        cw.put_metric_alarm(AlarmName=f"{f}-errors", MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum",
                            Period=60, EvaluationPeriods=1, Threshold=1,
                            ComparisonOperator="GreaterThanOrEqualToThreshold",
                            Dimensions=[{"Name": "FunctionName", "Value": f}], AlarmActions=[topic])
    with open(os.path.join(work, "routes.yaml"), "w") as out:
        out.write(f"""apiVersion: firebreak/v1
kind: Routes
allow:
  accounts: ["{account}"]
  regions: [us-east-1]
  functions: ["orders-bench-*"]
  sns_topics: ["{topic}"]
routes:
  - name: errors
    match: {{source: cloudwatch-alarm, alarm: "*-errors"}}
    playbook: {playbook}
    target: {{function: "${{alarm.dimensions.FunctionName}}"}}
""")
    with open(os.path.join(work, "queue_url"), "w") as out:
        out.write(queue)


def fire(n, work, spacing_ms):
    cw = client("cloudwatch")
    sent = {}
    for f in names(n):
        sent[f] = time.time()
        cw.set_alarm_state(AlarmName=f"{f}-errors", StateValue="ALARM", StateReason="bench")
        time.sleep(spacing_ms / 1000)
    with open(os.path.join(work, "sent.json"), "w") as out:
        json.dump(sent, out)


def ts(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def report(work):
    sent = json.load(open(os.path.join(work, "sent.json")))
    rows = []
    for line in open(os.path.join(work, "watch.jsonl")):
        try:
            h = json.loads(line)
        except ValueError:
            continue
        for o in h.get("outcomes", []):
            if o.get("outcome") != "responded" or o["summary"]["applied"] == 0:
                continue
            f = o["function"]
            trail = os.path.join(work, ".firebreak", "incidents", o["incident"], "audit.jsonl")
            applied = [json.loads(l) for l in open(trail)]
            put = next(r for r in applied if r["event"] == "applied" and r.get("step") == "throttle")
            t = o["timing"]
            rows.append({
                "function": f,
                "end_to_end_ms": (ts(put["time"]) - sent[f]) * 1000,
                "delivery_ms": (ts(t["received_at"]) - sent[f]) * 1000,
                "contain_ms": t["to_contain"]["elapsed_ms"],
                "contain_aws_ms": t["to_contain"]["aws_ms"],
                "contain_paced_ms": t["to_contain"]["paced_ms"],
                "contain_own_ms": t["to_contain"]["own_ms"],
                "own_ms": t["own_ms"],
                "aws_ms": t["aws_ms"],
            })
    if len(rows) != len(sent):
        print(f"only {len(rows)} of {len(sent)} alarms led to a containment", file=sys.stderr)
        sys.exit(1)
    print(f"{len(rows)} alarms, each: SetAlarmState -> SNS -> SQS -> firebreak watch -> PutFunctionConcurrency")
    print(f"{'':12s} {'median':>9s} {'p95':>9s} {'max':>9s}")
    for key, label in [("end_to_end_ms", "end to end"), ("delivery_ms", "delivery"),
                       ("contain_ms", "to contain"), ("contain_aws_ms", "  AWS waits"),
                       ("contain_paced_ms", "  paced"), ("contain_own_ms", "  firebreak"),
                       ("aws_ms", "run: AWS"), ("own_ms", "run: own")]:
        v = [r[key] for r in rows]
        print(f"{label:12s} {statistics.median(v):7.0f}ms {pct(v, 95):7.0f}ms {max(v):7.0f}ms")
    print("(to contain = message received to PutFunctionConcurrency answered, split into AWS's\n"
          " answers, pacing under AWS's quotas, and firebreak's own work; run = the whole run\n"
          " including verification and sealing)")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "seed":
        seed(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif cmd == "fire":
        fire(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        report(sys.argv[2])
