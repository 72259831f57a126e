"""Seed N functions for containment benchmarks: each with its own execution
role (a managed policy attached, an inline policy) and a public
resource-policy statement, as an attacker would leave them.

    ~/.cache/firebreak/localstack/venv/bin/python localstack/seed_fleet.py PREFIX N

Uses the credentials/endpoint from the environment (the access key id is the
LocalStack account). Bounded concurrency (8 threads) and idempotent creates:
LocalStack in host mode stalls when hundreds of functions are created at once.
"""

import io
import json
import os
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
# Every role's inline policy (besides its managed one).
INLINE = "inline-admin"


def clients():
    cfg = Config(retries={"max_attempts": 5}, proxies={})
    kw = dict(endpoint_url=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
              region_name=os.environ.get("AWS_REGION", "us-east-1"), config=cfg)
    return boto3.client("iam", **kw), boto3.client("lambda", **kw)


def ignore(code, fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except ClientError as e:
        if e.response["Error"]["Code"] != code:
            raise
        return None


def package():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return {'ok': True}\n")
    return buf.getvalue()


def role_of(prefix, name):
    # SHARED_ROLE=1: every function runs as one role (the blast-radius
    # case: one deny on it stops them all).
    return f"{prefix}-shared-role" if os.environ.get("SHARED_ROLE") else f"{name}-role"


def seed(prefix, name, policy_arn, code):
    iam, lam = clients()
    role = role_of(prefix, name)
    ignore("EntityAlreadyExists", iam.create_role, RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST))
    role_arn = iam.get_role(RoleName=role)["Role"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=policy_arn)
    iam.put_role_policy(RoleName=role, PolicyName=INLINE, PolicyDocument=json.dumps(ADMIN))
    ignore("ResourceConflictException", lam.create_function, FunctionName=name, Runtime="python3.12",
           Role=role_arn, Handler="handler.handler", Code={"ZipFile": code})
    deadline = time.time() + 60
    while lam.get_function_configuration(FunctionName=name).get("State") != "Active":
        if time.time() > deadline:
            sys.exit(f"function {name} did not become Active")
        time.sleep(0.2)
    ignore("ResourceConflictException", lam.add_permission, FunctionName=name, StatementId="anyone",
           Action="lambda:InvokeFunction", Principal="*")


def main():
    prefix, n = sys.argv[1], int(sys.argv[2])
    iam, _ = clients()
    created = ignore("EntityAlreadyExists", iam.create_policy, PolicyName=f"{prefix}-admin",
                     PolicyDocument=json.dumps(ADMIN))
    if created:
        policy_arn = created["Policy"]["Arn"]
    else:
        account = os.environ["AWS_ACCESS_KEY_ID"]
        policy_arn = f"arn:aws:iam::{account}:policy/{prefix}-admin"
    code = package()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for f in [pool.submit(seed, prefix, f"{prefix}-{i:04d}", policy_arn, code) for i in range(n)]:
            f.result()
    print(f"seeded {n} functions ({'one shared role' if os.environ.get('SHARED_ROLE') else 'a role each'}) {prefix}-0000..{prefix}-{n - 1:04d}")


if __name__ == "__main__":
    main()
