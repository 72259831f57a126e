"""Helpers of scripts/bench-quota.sh (not a test: it prints figures).

    bench_quota.py reset PREFIX N            put every function back as seeded
    bench_quota.py custodian-policy PREFIX OUT
    bench_quota.py state PREFIX N            end state as JSON
    bench_quota.py table RESULTS.jsonl       the side-by-side table

Reads LocalStack directly (AWS_ENDPOINT_URL, never the proxy), so checking
the end state costs the tools nothing.
"""

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# What seed_fleet.py gives every role besides its managed policy (run as
# `python localstack/bench_quota.py`, so its directory is on the path).
from seed_fleet import ADMIN, INLINE

# firebreak's inline policies: the quarantine's deny and its revocation of
# older sessions (firebreak-quarantine, firebreak-revoke-sessions).
FIREBREAK_PREFIX = "firebreak-"


def clients():
    cfg = Config(retries={"max_attempts": 5}, proxies={}, max_pool_connections=16)
    kw = dict(endpoint_url=os.environ["AWS_ENDPOINT_URL"],
              region_name=os.environ.get("AWS_REGION", "us-east-1"), config=cfg)
    return boto3.client("iam", **kw), boto3.client("lambda", **kw)


def names(prefix, n):
    return [f"{prefix}-{i:04d}" for i in range(n)]


def role_of(prefix, name):
    # As seed_fleet.py: SHARED_ROLE=1 puts every function on one role.
    return f"{prefix}-shared-role" if os.environ.get("SHARED_ROLE") else f"{name}-role"


def policy_statements(lam, name):
    try:
        return json.loads(lam.get_policy(FunctionName=name)["Policy"])["Statement"]
    except ClientError as e:
        if e.response["Error"]["Code"] == "ResourceNotFoundException":
            return []
        raise


def public(statement):
    p = statement.get("Principal")
    return p == "*" or (isinstance(p, dict) and p.get("AWS") == "*")


def role_allowed(iam, role):
    """The role can still act: it keeps an Allow and no inline Deny of everything."""
    inline = iam.list_role_policies(RoleName=role)["PolicyNames"]
    for name in inline:
        doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        doc = json.loads(doc) if isinstance(doc, str) else doc
        stmts = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
        # Unconditional: firebreak's revoke-sessions Deny holds only for
        # sessions issued before the quarantine.
        if any(s.get("Effect") == "Deny" and s.get("Action") in ("*", ["*"]) and not s.get("Condition")
               for s in stmts):
            return False
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    return bool(inline or attached)


def reset_one(prefix, name):
    iam, lam = clients()
    account = os.environ["AWS_ACCESS_KEY_ID"]
    role = role_of(prefix, name)
    try:
        lam.delete_function_concurrency(FunctionName=name)
    except ClientError:
        pass
    if not any(s.get("Sid") == "anyone" for s in policy_statements(lam, name)):
        lam.add_permission(FunctionName=name, StatementId="anyone",
                           Action="lambda:InvokeFunction", Principal="*")
    inline = iam.list_role_policies(RoleName=role)["PolicyNames"]
    for p in inline:
        if p.startswith(FIREBREAK_PREFIX):
            try:
                iam.delete_role_policy(RoleName=role, PolicyName=p)
            except ClientError as e:
                # A shared role: another thread removed it first.
                if e.response["Error"]["Code"] != "NoSuchEntity":
                    raise
    # The seeded inline policy, which a quarantine deletes: without it the
    # next tool's run has a call less to make per role.
    if INLINE not in inline:
        iam.put_role_policy(RoleName=role, PolicyName=INLINE, PolicyDocument=json.dumps(ADMIN))
    admin = f"arn:aws:iam::{account}:policy/{prefix}-admin"
    attached = [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]]
    if admin not in attached:
        iam.attach_role_policy(RoleName=role, PolicyArn=admin)


def reset(prefix, n):
    with ThreadPoolExecutor(max_workers=8) as pool:
        for f in [pool.submit(reset_one, prefix, name) for name in names(prefix, n)]:
            f.result()
    # LocalStack answers the first GetFunction of its life in about 3 s
    # (measured at N = 1,000: every later one in 10-80 ms), which AWS does
    # not: made here, outside the proxy, so that no tool's run pays it.
    clients()[1].get_function(FunctionName=names(prefix, 1)[0])


def state_one(prefix, name):
    iam, lam = clients()
    reserved = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    return {
        "throttled": reserved == 0,
        "public_statements": sum(1 for s in policy_statements(lam, name) if public(s)),
        "role_allowed": role_allowed(iam, role_of(prefix, name)),
    }


def state(prefix, n):
    with ThreadPoolExecutor(max_workers=8) as pool:
        rows = list(pool.map(lambda name: state_one(prefix, name), names(prefix, n)))
    return {
        "at_zero": sum(r["throttled"] for r in rows),
        "public_left": sum(r["public_statements"] for r in rows),
        "roles_allowed": sum(r["role_allowed"] for r in rows),
    }


def custodian_policy(prefix, out):
    # Cloud Custodian's own actions for this: set-concurrency 0 on every
    # function, remove-statements for cross-account (here: public)
    # statements, detach the roles' managed policies.
    doc = f"""policies:
  - name: bench-throttle
    resource: lambda
    filters:
      - type: value
        key: FunctionName
        op: glob
        value: "{prefix}-*"
    actions:
      - type: set-concurrency
        value: 0
  - name: bench-public
    resource: lambda
    filters:
      - type: value
        key: FunctionName
        op: glob
        value: "{prefix}-*"
      - type: cross-account
    actions:
      - type: remove-statements
        statement_ids: matched
  - name: bench-roles
    resource: iam-role
    filters:
      - type: value
        key: RoleName
        op: glob
        value: "{prefix}-*role"
    actions:
      - type: set-policy
        state: detached
        arn: "*"
"""
    with open(out, "w") as f:
        f.write(doc)


def table(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    head = (f"{'N':>5} {'latency':>8} {'tool':10} {'wall':>8} {'contained':>9} {'bound':>7} {'ratio':>6} {'c.ratio':>7} "
            f"{'calls':>6} {'min':>6} {'thrott':>6} {'at 0':>5} {'public':>6} {'roles':>5}")
    head += f" {'harm stopped':>12} {'closed':>8} {'cl.ratio':>8} {'own':>6} {'gc':>6}"
    print(head)
    print("-" * len(head))
    for r in rows:
        harm = f"{r['harm_stopped_s']:>11.2f}s" if r.get("harm_stopped_s") is not None else f"{'-':>12}"
        tool = r['tool'] + (" *" if r.get("shared") else "")
        c = r.get("contained_s")
        contained = f"{c:>8.2f}s" if c is not None else f"{'-':>9}"
        cratio = f"{c / r['bound_s']:>6.2f}x" if c is not None else f"{'-':>7}"
        cl = r.get("closed_s")
        closed = f"{cl:>7.2f}s {cl / r['bound_s']:>7.2f}x" if cl is not None else f"{'-':>8} {'-':>8}"
        own = f"{r['own_ms']:>4}ms" if r.get("own_ms") is not None and r["n"] == 1 else f"{'-':>6}"
        pauses = r.get("ls_gc_pauses_ms") or []
        gc = f"{max(pauses):>4}ms" if pauses else f"{'-':>6}"
        print(f"{r['n']:>5} {r['latency_ms']:>6}ms {tool:10} {r['wall_s']:>7.2f}s {contained} {r['bound_s']:>6.2f}s "
              f"{r['wall_s'] / r['bound_s']:>5.2f}x {cratio} {r['calls']:>6} {r['min_calls']:>6} {r['throttled']:>6} "
              f"{r['state']['at_zero']:>5} {r['state']['public_left']:>6} {r['state']['roles_allowed']:>5} {harm} {closed} {own} {gc}")
    print("wall: start to exit; contained: firebreak's planning and harm-stopping pass (before it\n"
          "verifies), the others' wall; ratio: wall / bound; c.ratio: contained / bound;\n"
          "bound: the playbook's minimum control-plane calls at Lambda's 15/s, time-compressed\n"
          "(full containment: N throttles + N public statements; cli and fb-throttle: N throttles);\n"
          "calls: every request through the proxy; min: that minimum;\n"
          "thrott: answered as over quota; at 0 / public / roles: end state read back from LocalStack\n"
          "(functions at concurrency 0, public statements left, roles that can still act).\n"
          "fb-throttle: firebreak with playbooks/throttle-function.yaml (describe, throttle).\n"
          "harm stopped: a role each, start to the last PutFunctionConcurrency answered when all N\n"
          "end at 0 (none can run); *: the N functions share one role, start to the first change\n"
          "to that role answered (firebreak's deny, Cloud Custodian's detach); wall seconds.\n"
          "closed: start to the last throttle, statement removal or URL deletion answered, when the\n"
          "end state is contained (what the bound counts); cl.ratio: closed / bound. firebreak goes on\n"
          "to list every function's aliases and URLs (on the same 15/s) and to verify.\n"
          "fb-named: firebreak with one function named (an alarm's case), the role's deny stops all N.\n"
          "fb-full: firebreak with the shipped playbooks/lambda-compromise.yaml (evidence, containment, secrets, tags, code, logs).\n"
          "own (N = 1, firebreak): process start to contained minus AWS's answers and pacing\n"
          "(timings.to_contained.own_ms; the proxy's added latency is part of AWS's answers).\n"
          "gc: LocalStack's longest full garbage collection over 100 ms during the run (it answers\n"
          "nothing meanwhile); the seeded heap is frozen first unless FREEZE_HEAP is empty.")

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "reset":
        reset(sys.argv[2], int(sys.argv[3]))
    elif cmd == "custodian-policy":
        custodian_policy(sys.argv[2], sys.argv[3])
    elif cmd == "state":
        print(json.dumps(state(sys.argv[2], int(sys.argv[3]))))
    elif cmd == "table":
        table(sys.argv[2])
    else:
        sys.exit(f"unknown command {cmd}")
