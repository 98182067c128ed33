"""Wait until the kernel has finished destroying network namespaces, before the next timed row.

Part of bench/. A teardown returns once the namespaces' names and processes are gone; the
kernel destroys the namespaces themselves later, in its `netns` workqueue (cleanup_net), which
after 10,000 pods keeps a core busy for many seconds and holds the rtnl lock: a row timed then
measures the previous row's leftovers (issue 18: a scale +10 at 1,000 pods took 1.07 s right
after the 10,000-pod teardown, 0.31-0.33 s alone). Two signs, both read from /proc and checked
on this VM (400 namespaces deleted: the worker showed `+netns` until the slab count fell):

- a kernel worker is running the netns workqueue now: its /proc/PID/comm reads
  `kworker/...+netns` (the kernel names a worker after the workqueue of its current item with
  `+`, of its last one with `-`; `kworker/R-netns` is the queue's idle rescuer);
- the count of live `net_namespace` objects (/proc/slabinfo) is still falling.

Settled is `quiet` seconds in a row with neither; the wait is bounded. Both signs are the whole
machine's: other instances' teardowns are waited for too, which is what the next row needs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

SLABINFO = "/proc/slabinfo"


def net_namespaces(path: str = SLABINFO) -> int | None:
    """Active `net_namespace` objects (live and not yet freed namespaces), or None if unreadable."""
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("net_namespace "):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def netns_worker_busy(proc: str = "/proc") -> bool:
    """A kernel worker is executing an item of the netns workqueue now (its comm ends `+netns`)."""
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return False
    for pid in pids:
        try:
            with open(f"{proc}/{pid}/comm", encoding="ascii", errors="replace") as handle:
                comm = handle.read().strip()
        except OSError:
            continue  # gone meanwhile
        if comm.startswith("kworker/") and comm.endswith("+netns"):
            return True
    return False


@dataclass(frozen=True)
class Settle:
    waited_s: float
    bound_hit: bool  # the bound was reached while the kernel was still destroying namespaces
    namespaces_at_start: int | None
    namespaces_at_end: int | None

    def note(self) -> str:
        """One phrase for a figure's note and the bench's progress line."""
        left = f" ({self.namespaces_at_start} -> {self.namespaces_at_end} namespaces)"
        if self.namespaces_at_start is None:
            left = ""
        if self.bound_hit:
            return f"waited the bound, {self.waited_s:.1f} s, and the kernel was still destroying namespaces{left}"
        return f"waited {self.waited_s:.1f} s for the kernel to destroy earlier namespaces{left}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wait_netns_settled(
    bound: float = 180.0,
    quiet: float = 1.0,
    poll: float = 0.1,
    count: Callable[[], int | None] = net_namespaces,
    busy: Callable[[], bool] = netns_worker_busy,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Settle:
    """Return once neither sign was seen for `quiet` seconds, or after `bound` seconds."""
    start = clock()
    first = last = count()
    calm_since = start
    while True:
        now = clock()
        current = count()
        falling = current is not None and last is not None and current < last
        if busy() or falling:
            calm_since = now
        last = current
        if now - calm_since >= quiet:
            return Settle(round(now - start, 2), False, first, current)
        if now - start >= bound:
            return Settle(round(now - start, 2), True, first, current)
        sleep(poll)
