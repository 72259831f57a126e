"""plux plugin that makes the executor selectable as LAMBDA_RUNTIME_EXECUTOR=firebreak."""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class FirebreakRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "firebreak"

    def load(self, *args, **kwargs):
        from firebreak_localstack_executor import prompt_stop
        from firebreak_localstack_executor.executor import FirebreakRuntimeExecutor

        prompt_stop.install()
        return FirebreakRuntimeExecutor
