"""lower_priority re-nices every thread of the process, those started before it too, and threads started
after inherit it; it never raises a priority (nice only goes up without privilege). Run in a child process:
nice cannot be undone in the test process."""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = """
import json, os, threading, time
from pathlib import Path
from services.common.cpu_priority import lower_priority

stop = threading.Event()
early = threading.Thread(target=stop.wait, daemon=True)
early.start()
base = os.getpriority(os.PRIO_PROCESS, 0)  # the test run itself may be niced
assert lower_priority(0) == base  # 0 leaves the process as started
target = min(19, base + 3)
first = lower_priority(target)
again = lower_priority(base)  # below the current value: no change
late = []
threading.Thread(target=lambda: late.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))).start()
time.sleep(0.2)
tids = [int(t.name) for t in Path("/proc/self/task").iterdir()]
nices = sorted({os.getpriority(os.PRIO_PROCESS, t) for t in tids})
print(json.dumps([target, first, again, late[0], nices, len(tids)]))
"""


def test_every_thread_and_later_ones_are_reniced_and_never_raised() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True)
    target, first, again, late, nices, threads = json.loads(out.stdout)
    assert (first, again, late, nices) == (target, target, target, [target])
    assert threads >= 2  # the early thread was there and was re-niced too
