"""Create what the evidence steps of lambda-compromise.yaml read, for demos:
a forensic bucket with Object Lock and the function's log group with a few
events (LocalStack runs no function code here, so nothing else writes it).

    ~/.cache/firebreak/localstack/venv/bin/python localstack/seed_evidence.py FUNCTION BUCKET

Uses the credentials/endpoint from the environment. Idempotent.
"""

import os
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    function, bucket = sys.argv[1], sys.argv[2]
    cfg = Config(retries={"max_attempts": 2}, proxies={}, s3={"addressing_style": "path"})
    kw = dict(endpoint_url=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"), region_name=os.environ.get("AWS_REGION", "us-east-1"), config=cfg)
    s3, logs = boto3.client("s3", **kw), boto3.client("logs", **kw)
    try:
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    group = f"/aws/lambda/{function}"
    try:
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="2026/11/23/[$LATEST]demo")
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
    now = int(time.time() * 1000)
    events = [
        {"timestamp": now - 60_000 + i * 1000, "message": m}
        for i, m in enumerate([
            "START RequestId: 1f0c Version: $LATEST",
            "GET /orders 200",
            "curl http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "POST https://paste.example/upload 200",
            "END RequestId: 1f0c",
        ])
    ]
    logs.put_log_events(logGroupName=group, logStreamName="2026/11/23/[$LATEST]demo", logEvents=events)
    print(f"s3://{bucket} (Object Lock), log group {group} with {len(events)} events")


if __name__ == "__main__":
    main()
