"""The first build's pod files, written by a thread while the pod sandboxes are made (emu/).

ClusterDns writes every pod's resolv.conf and hosts (emu/podfiles.py) in the controllers
phase, after the pods phase. The two need nothing of each other (the files are text on the
instance's tmpfs and a symlink per pod in /etc/netns), and at 10,000 pods the files took 2-3 s
on a quiet VM, up to 20 s after other clusters' teardowns (each symlink a new ext4 inode,
found past the inodes deleted in the last minutes: README "Speed"), mostly waiting on the
file system while the pods phase waits on the rtnl lock. So the build starts them here,
beside the pods phase, and ClusterDns's first sync takes the result (waiting for the end).

Nothing is written that the serial build would not write: the same files for the same plan.
ClusterDns records every file's pod before the thread starts, so a teardown that comes first
(a failed build) waits for the thread and removes what it wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ..plan.model import Plan
from .ledger import netns_name
from .podfiles import pod_files, write_pod_files


class FilesAhead:
    """`FilesAhead(plan, tag, mount)`: writes pod_files(plan, tag) under the folder `mount()`
    returns (the instance's tmpfs, mounted by the thread); `result()` waits and raises its error."""

    def __init__(self, plan: Plan, tag: str, mount: Callable[[], str]) -> None:
        self.plan = plan
        self.names = [netns_name(tag, p.key) for p in plan.pods]  # the pods whose files it writes
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tb-podfiles")
        self._future: Future[dict[str, tuple[str, str]]] = self._pool.submit(self._write, tag, mount)
        self._pool.shutdown(wait=False)  # the thread ends with its one job

    def _write(self, tag: str, mount: Callable[[], str]) -> dict[str, tuple[str, str]]:
        files = pod_files(self.plan, tag)  # the texts too: their Python runs beside the pods phase
        write_pod_files(files, {}, mount())
        return files

    def result(self) -> dict[str, tuple[str, str]]:
        """The files written (netns name -> texts), once the thread ended; raises its error."""
        return self._future.result()

    def wait(self) -> None:
        """Wait for the thread, whatever it raised (teardown: what it wrote is removed next)."""
        self._future.exception()
