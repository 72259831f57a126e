"""Smoke test of LocalStack + the firebreak Lambda executor.

Run with the venv's python after start.sh:
    ~/.cache/firebreak/localstack/venv/bin/python localstack/smoke.py [ENDPOINT]
Exits non-zero on any failure.
"""

import base64
import hashlib
import io
import json
import os
import sys
import time
import urllib.request
import uuid
import zipfile

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = (
    sys.argv[1]
    if len(sys.argv) > 1
    else os.environ.get("AWS_ENDPOINT_URL")
    or f"http://127.0.0.1:{os.environ.get('FIREBREAK_LOCALSTACK_PORT', '4566')}"
)
ACCOUNT = "000000000123"
REGION = "us-east-1"


def step(msg):
    print(f"smoke: {msg}", flush=True)


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=ACCOUNT,
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, proxies={}),
    )


def wait_for(lam, name, pred, what, timeout=30):
    deadline = time.time() + timeout
    while True:
        cfg = lam.get_function_configuration(FunctionName=name)
        if pred(cfg):
            return cfg
        if cfg.get("State") == "Failed" or time.time() > deadline:
            raise AssertionError(f"{what}: {json.dumps(cfg, default=str)}")
        time.sleep(0.2)


def main():
    suffix = uuid.uuid4().hex[:8]
    iam, lam, sts = client("iam"), client("lambda"), client("sts")

    ident = sts.get_caller_identity()
    assert ident["Account"] == ACCOUNT, ident
    step(f"STS account {ident['Account']}")

    role = iam.create_role(
        RoleName=f"smoke-role-{suffix}",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]
    assert f":{ACCOUNT}:" in role["Arn"], role["Arn"]
    step(f"created role {role['Arn']}")

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("index.py", "def handler(event, context):\n    return {'real': True}\n")
    zip_bytes = buf.getvalue()

    name = f"smoke-fn-{suffix}"
    t0 = time.time()
    fn = lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role["Arn"],
        Handler="index.handler",
        Code={"ZipFile": zip_bytes},
        Timeout=10,
    )
    assert f":{ACCOUNT}:" in fn["FunctionArn"], fn["FunctionArn"]
    wait_for(lam, name, lambda c: c.get("State") == "Active", "function never became Active")
    step(f"function {name} Active in {time.time() - t0:.2f}s")

    lam.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"FIREBREAK_SMOKE": suffix}}
    )
    cfg = wait_for(
        lam,
        name,
        lambda c: c.get("LastUpdateStatus") == "Successful",
        "UpdateFunctionConfiguration did not succeed",
    )
    assert cfg["Environment"]["Variables"]["FIREBREAK_SMOKE"] == suffix, cfg
    step("UpdateFunctionConfiguration Successful")

    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    try:
        lam.invoke(FunctionName=name, Payload=b"{}")
    except ClientError as e:
        code = e.response["Error"]["Code"]
        assert code == "TooManyRequestsException", e.response
        step(f"concurrency 0: Invoke refused with {code} ({e.response.get('Reason', '')})")
    else:
        raise AssertionError("Invoke succeeded at reserved concurrency 0")

    lam.delete_function_concurrency(FunctionName=name)
    resp = lam.invoke(FunctionName=name, Payload=json.dumps({"hello": suffix}).encode())
    assert resp["StatusCode"] == 200, resp
    assert "FunctionError" not in resp, resp
    body = json.loads(resp["Payload"].read())
    assert body.get("firebreak_executor") is True, body
    assert body.get("request_id"), body
    assert body.get("event") == {"hello": suffix}, body
    step(f"Invoke after DeleteFunctionConcurrency returned {body}")

    got = lam.get_function(FunctionName=name)
    url = got["Code"]["Location"]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as r:
        downloaded = r.read()
    sha = base64.b64encode(hashlib.sha256(downloaded).digest()).decode()
    assert sha == got["Configuration"]["CodeSha256"], (sha, got["Configuration"]["CodeSha256"])
    assert downloaded == zip_bytes
    step(f"code download from {url} matches CodeSha256 {sha}")

    lam.delete_function(FunctionName=name)
    iam.delete_role(RoleName=role["RoleName"])
    step("cleaned up; all checks passed")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        print(f"smoke: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
