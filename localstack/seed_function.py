"""Create a sample Lambda function in LocalStack for demos and drills.

    ~/.cache/firebreak/localstack/venv/bin/python localstack/seed_function.py NAME [--concurrency N]

Uses the credentials/endpoint from the environment (source localstack/env.sh).
Idempotent: an existing function is left as it is. Prints the function ARN.
"""

import argparse
import io
import json
import os
import sys
import time
import zipfile

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--concurrency", type=int)
    args = ap.parse_args()
    cfg = Config(retries={"max_attempts": 2}, proxies={})
    kw = dict(endpoint_url=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"), region_name=os.environ.get("AWS_REGION", "us-east-1"), config=cfg)
    iam, lam = boto3.client("iam", **kw), boto3.client("lambda", **kw)
    role = f"{args.name}-role"
    try:
        role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    except ClientError as e:
        if e.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        role_arn = iam.get_role(RoleName=role)["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return {'ok': True}\n")
    try:
        arn = lam.create_function(
            FunctionName=args.name, Runtime="python3.12", Role=role_arn, Handler="handler.handler",
            Code={"ZipFile": buf.getvalue()}, Environment={"Variables": {"DB_PASSWORD": "not-a-real-secret", "STAGE": "demo"}},
        )["FunctionArn"]
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceConflictException":
            raise
        arn = lam.get_function(FunctionName=args.name)["Configuration"]["FunctionArn"]
    deadline = time.time() + 30
    while lam.get_function_configuration(FunctionName=args.name).get("State") != "Active":
        if time.time() > deadline:
            sys.exit(f"function {args.name} did not become Active")
        time.sleep(0.2)
    if args.concurrency is not None:
        lam.put_function_concurrency(FunctionName=args.name, ReservedConcurrentExecutions=args.concurrency)
    print(arn)


if __name__ == "__main__":
    main()
