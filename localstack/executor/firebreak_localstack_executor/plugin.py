"""plux plugin that makes the executor selectable as LAMBDA_RUNTIME_EXECUTOR=firebreak."""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class FirebreakRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "firebreak"

    def load(self, *args, **kwargs):
        import os

        from firebreak_localstack_executor import lazy_start, prompt_stop
        from firebreak_localstack_executor.executor import FirebreakRuntimeExecutor

        prompt_stop.install()
        # FIREBREAK_LOCALSTACK_EAGER=1: LocalStack's own eager start, to
        # compare against.
        if os.environ.get("FIREBREAK_LOCALSTACK_EAGER") != "1":
            lazy_start.install()
        return FirebreakRuntimeExecutor
