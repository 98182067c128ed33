"""The process-wide pool of rule loaders (emu/rules.py) never keeps the interpreter from exiting.

A Ctrl-C inside `submit()`, between a worker thread's start and its registration in
concurrent.futures' exit list, left a worker nothing woke at exit: `testbed run` then hung in
threading._shutdown after its teardown (seen in the signal campaign). The unregistered worker is
reproduced here by clearing that list."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import concurrent.futures.thread as cft
from testbed.emu import rules
rules._loaders().submit(lambda: None).result()
cft._threads_queues.clear()  # as the signal leaves it: a worker concurrent.futures does not know
print("exiting")
"""


def test_an_unregistered_loader_thread_does_not_hang_the_exit():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.strip() == "exiting", done
