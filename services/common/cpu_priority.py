"""Background services yield the CPU to interactive ones: the annotation service (and the Triton child it
may start) runs at a higher nice value than the DAM, so on a machine they share, an annotation backlog takes
only the CPU that searches and uploads leave idle (Linux's scheduler weighs nice 10 at ~1/9 of nice 0)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def lower_priority(nice: int) -> int:
    """Raises every thread of this process to at least `nice` (on Linux, nice is per thread; threads and
    processes started later inherit it). Lowering needs no privilege; returns the nice value now in force."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else 0
    tasks = Path("/proc/self/task")
    tids = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except (ProcessLookupError, PermissionError) as exc:  # a thread that just ended; a locked-down sandbox
            log.debug("could not lower the priority of thread %d: %s", tid, exc)
    return os.getpriority(os.PRIO_PROCESS, 0)
