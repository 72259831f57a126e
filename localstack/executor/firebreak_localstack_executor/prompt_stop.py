"""Deleting a function stops its event poller at once.

LocalStack's event manager stops a version's poller and then waits up to
3 s for it, while the poller sits in a 2 s long poll of its internal queue.
Those waits run on the Lambda service's task pool (six workers on two
cores), the pool that also makes new functions Active: deleting a test's
fleet of 60 to 200 functions kept other tests' new functions Pending for
more than 30 s. Shutting the version's internal queue wakes the poller, so
the wait ends at once. Only `stop` (the version is going away) does this;
`stop_for_update` keeps the queue for the next version.
"""

import logging

LOG = logging.getLogger(__name__)


def install() -> None:
    from localstack.services.lambda_.invocation.event_manager import LambdaEventManager
    from localstack.services.lambda_.invocation.internal_sqs_queue import get_fake_sqs_client

    if getattr(LambdaEventManager, "_firebreak_prompt_stop", False):
        return
    original_stop = LambdaEventManager.stop

    def stop(self) -> None:
        poller, url = self.poller, self.event_queue_url
        if poller is not None and url and not self.stopped.is_set():
            # The poller checks this flag when its receive returns; set it
            # first so the woken poller exits instead of polling again.
            poller._shutdown_event.set()
            try:
                get_fake_sqs_client().queue_manager.get_queue(queue_name=url).shutdown()
            except Exception as e:  # the queue may already be gone
                LOG.debug("firebreak executor: could not wake poller of %s: %s", url, e)
        original_stop(self)

    LambdaEventManager.stop = stop
    LambdaEventManager._firebreak_prompt_stop = True
