"""Imported by the benchmarks' LocalStack only (scripts/bench-quota.sh puts
this directory on its PYTHONPATH; the tests' LocalStack never sees it).

LocalStack is one Python process. Holding 1,000 seeded functions, each of
Python's full (generation 2) garbage collections walks all of them and
stops every request for 0.6-0.75 s (measured with a gc callback: one every
20-40 s under the benchmark's load), which AWS does not do; one landing in
a run's first second decides its "harm stopped" figure. SIGUSR2 (sent by
the benchmark once it has seeded) moves everything alive into the
permanent generation (gc.freeze), so that later full collections walk only
what the run itself allocates. Nothing is freed less: what is frozen is
alive.

FIREBREAK_GC_LOG=FILE appends each collection longer than 50 ms to FILE
(epoch seconds, generation, milliseconds), so a benchmark can say whether
one fell in a run.
"""

import gc
import os
import signal
import time


def _freeze(_signum, _frame):
    gc.collect()
    gc.freeze()


signal.signal(signal.SIGUSR2, _freeze)

_log_path = os.environ.get("FIREBREAK_GC_LOG")
if _log_path:
    _started = {}

    def _timed(phase, info):
        if phase == "start":
            _started["t"] = time.perf_counter()
            return
        took = (time.perf_counter() - _started.get("t", time.perf_counter())) * 1000
        if took > 50:
            with open(_log_path, "a") as f:
                f.write(f"{time.time():.3f} gen{info['generation']} {took:.0f}ms\n")

    gc.callbacks.append(_timed)
