"""A Docker-less Lambda runtime executor for LocalStack in host mode.

It runs no user code. Every invocation succeeds at once with a small JSON
payload, so the Lambda control plane (state Active, configuration/code
updates, concurrency throttling, versions, aliases, URLs, permissions, event
source mappings) behaves as it would with a real runtime.

The payload is

    {"firebreak_executor": true, "request_id": ..., "function_name": ...,
     "qualifier": ..., "event": <the invocation payload, parsed if JSON>}

unless the function's environment sets FIREBREAK_EXECUTOR_RESPONSE, whose
value is then returned verbatim.
"""

import json
import logging
import threading

from localstack import config
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import RuntimeExecutor

LOG = logging.getLogger(__name__)

RESPONSE_ENV_VAR = "FIREBREAK_EXECUTOR_RESPONSE"


def _gateway_port() -> int:
    try:
        return int(config.GATEWAY_LISTEN[0].port)
    except Exception:  # pragma: no cover - defensive
        return 4566


class FirebreakRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.env_vars: dict[str, str] = {}
        self._logs: list[str] = []
        self._lock = threading.Lock()

    def _log(self, line: str) -> None:
        with self._lock:
            self._logs.append(line)

    def start(self, env_vars: dict[str, str]) -> None:
        self.env_vars = dict(env_vars or {})
        self._log(f"firebreak executor {self.id} started for {self.function_version.qualified_arn}")

    def stop(self) -> None:
        self._log(f"firebreak executor {self.id} stopped")

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        return f"http://{self.get_endpoint_from_executor()}:{_gateway_port()}/_localstack_lambda/{self.id}"

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        request_id = payload.get("invoke-id", "")
        override = (self.function_version.config.environment or {}).get(RESPONSE_ENV_VAR)
        if override is not None:
            body = override.encode("utf-8")
        else:
            raw = payload.get("payload")
            try:
                event = json.loads(raw) if raw else None
            except (TypeError, ValueError):
                event = raw
            body = json.dumps(
                {
                    "firebreak_executor": True,
                    "request_id": request_id,
                    "function_name": self.function_version.id.function_name,
                    "qualifier": self.function_version.id.qualifier,
                    "event": event,
                }
            ).encode("utf-8")
        logs = (
            f"START RequestId: {request_id} Version: {self.function_version.id.qualifier}\n"
            f"firebreak executor: no user code run\n"
            f"END RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\tDuration: 0.00 ms\tBilled Duration: 1 ms\t"
            f"Memory Size: {self.function_version.config.memory_size} MB\tMax Memory Used: 0 MB\n"
        )
        self._log(logs)
        return InvocationResult(request_id=request_id, payload=body, is_error=False, logs=logs)

    def get_logs(self) -> str:
        with self._lock:
            return "\n".join(self._logs)

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        # Must never raise: an exception here marks the function Failed.
        try:
            LOG.debug("firebreak executor: prepared %s", function_version.qualified_arn)
        except Exception:  # pragma: no cover - defensive
            pass

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        return True
