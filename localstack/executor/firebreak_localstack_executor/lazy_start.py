"""A version's event poller and log thread start when first needed.

LocalStack starts, for every Active function version, a thread that
long-polls the version's internal event queue (2 s at a time) and a thread
that waits for its log lines. With 1,000 functions that is 2,000 threads and
about 500 queue receives a second while nothing is invoked: LocalStack then
answers the control plane several times slower (ListAliases 630 ms,
GetFunction 224 ms on average in a 1,000-function benchmark) and at times
not at all for 30 s. Fleets in the tests and benchmarks are never invoked
asynchronously, and only some are invoked at all.

Here the poller starts on the version's first asynchronous invoke
(`enqueue_event`), and the log thread on its first log lines (`add_logs`).
One case starts the poller at once, as before: a version whose queue
existed under an earlier event manager (an update of `$LATEST` keeps the
queue, and events left in it must still be delivered).
"""

import logging
import threading

LOG = logging.getLogger(__name__)

# Queue namespaces (qualified ARN and function instance) whose poller has
# run in this LocalStack: their queue may hold events.
_started: set[str] = set()
_started_lock = threading.Lock()
# Two first log lines at once start one thread.
_subscriber_lock = threading.Lock()


def _namespace(manager) -> str:
    version = manager.version_manager
    return f"{version.function_version.id.qualified_arn()}-{version.function.instance_id}"


def install() -> None:
    from localstack.services.lambda_.invocation.event_manager import LambdaEventManager
    from localstack.services.lambda_.invocation.logs import LogHandler

    if getattr(LambdaEventManager, "_firebreak_lazy_start", False):
        return
    original_start = LambdaEventManager.start
    original_enqueue = LambdaEventManager.enqueue_event

    def start_now(self) -> None:
        with _started_lock:
            _started.add(_namespace(self))
        original_start(self)

    def start(self) -> None:
        try:
            earlier = _namespace(self) in _started
        except Exception as e:  # a shape we do not know: start as LocalStack does
            LOG.debug("firebreak executor: starting poller at once: %s", e)
            earlier = True
        with self.lifecycle_lock:
            self._firebreak_start_wanted = True
            if earlier:
                start_now(self)

    def enqueue_event(self, invocation) -> None:
        with self.lifecycle_lock:
            if (
                self.poller is None
                and getattr(self, "_firebreak_start_wanted", False)
                and not self.stopped.is_set()
            ):
                start_now(self)
        return original_enqueue(self, invocation)

    LambdaEventManager.start = start
    LambdaEventManager.enqueue_event = enqueue_event
    LambdaEventManager._firebreak_lazy_start = True

    original_subscriber = LogHandler.start_subscriber
    original_add_logs = LogHandler.add_logs

    def start_subscriber(self) -> None:
        self._firebreak_subscriber_wanted = True

    def add_logs(self, log_item) -> None:
        if getattr(self, "_firebreak_subscriber_wanted", False):
            with _subscriber_lock:
                if self._firebreak_subscriber_wanted:
                    self._firebreak_subscriber_wanted = False
                    if not self._shutdown_event.is_set():
                        original_subscriber(self)
        original_add_logs(self, log_item)

    LogHandler.start_subscriber = start_subscriber
    LogHandler.add_logs = add_logs
