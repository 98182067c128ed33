"""The agent's per-pod access log: one line per connection (TCP) or datagram (UDP) it answered,
with the source address:port as the pod saw it, so NAT is visible (`logs POD` in the shell).

Where it sits: agent/endpoints.py calls `add` as it accepts, and the agent's loop (server.py)
calls `flush` when it has nothing else to do (a few lines at once, a burst's once no event came for
ACCESS_LINGER_S, at most ACCESS_FLUSH_S late), so a burst of probes costs one write per pod file
rather than three syscalls per connection (issue 18); `since` says when the oldest line waiting was
queued, `queued` how many wait. The files of the last `max_open` pods written stay
open between rounds (the agent sets it from its open-files limit; 0 opens and closes each file
every round). `record` is add and flush at once.
The files live in the instance's folder next to the agent's config
(<run dir>/access/<namespace>_<pod>.log) and go with it at teardown. Bounded: a file past
MAX_BYTES becomes <file>.1 (one old generation kept), so a pod's log stays near 2 x MAX_BYTES
(each file may pass it by one flush's lines). A failed write is dropped, never fatal: answering matters more than logging.
"""

from __future__ import annotations

import os
import time

from testbed.wire.reply import PortIdentity

MAX_BYTES = 256 * 1024


class AccessLog:
    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.sizes: dict[str, int] = {}  # path -> bytes written so far (fstat'ed once)
        self.ok = True
        self.pending: dict[str, list[str]] = {}  # path -> lines not yet written
        self._second = -1
        self._stamp = ""  # the formatted time of self._second (one strftime a second)
        self.max_open = 0  # files kept open between flushes, the least recently written closed first
        self.fds: dict[str, int] = {}  # path -> open descriptor, oldest write first
        self.since = 0.0  # time.time() of the oldest line not yet written
        self.queued = 0  # lines not yet written

    def path(self, namespace: str, pod: str) -> str:
        return os.path.join(self.folder, f"{namespace}_{pod}.log")

    def add(self, who: PortIdentity, peer_ip: str, peer_port: int, local_ip: str) -> None:
        """Queue one line; it is written by the next flush()."""
        if not self.ok:
            return
        t = time.time()
        second = int(t)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        line = (
            f"{self._stamp}.{int(t % 1 * 1000):03d}Z "
            f"{who.protocol} {peer_ip}:{peer_port} -> {local_ip}:{who.port} container={who.container}\n"
        )
        path = self.path(who.namespace, who.pod)
        if not self.pending:
            self.since, self.queued = t, 0
        self.queued += 1
        lines = self.pending.get(path)
        if lines is None:
            self.pending[path] = [line]
        else:
            lines.append(line)

    def record(self, who: PortIdentity, peer_ip: str, peer_port: int, local_ip: str) -> None:
        """Write one line now."""
        self.add(who, peer_ip, peer_port, local_ip)
        self.flush()

    def flush(self) -> None:
        """Write every queued line, one append per file."""
        if not self.pending:
            return
        pending, self.pending = self.pending, {}
        if not self.ok:
            return
        for path, lines in pending.items():
            try:
                size = self.sizes.get(path)
                if size is None:
                    os.makedirs(self.folder, exist_ok=True)
                    size = os.path.getsize(path) if os.path.exists(path) else 0
                if size > MAX_BYTES:
                    self._close(path)  # the open file becomes <file>.1
                    os.replace(path, path + ".1")
                    size = 0
                fd = self.fds.pop(path, -1)
                if fd < 0:
                    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    size += os.write(fd, "".join(lines).encode())
                finally:
                    self._keep(path, fd)
                self.sizes[path] = size
            except OSError:
                self.ok = False  # a full or read-only folder: stop trying, keep answering
                return

    def _keep(self, path: str, fd: int) -> None:
        """Keep fd open as the most recently written, closing the oldest beyond max_open."""
        if self.max_open <= 0:
            os.close(fd)
            return
        self.fds[path] = fd
        while len(self.fds) > self.max_open:
            os.close(self.fds.pop(next(iter(self.fds))))

    def _close(self, path: str) -> None:
        fd = self.fds.pop(path, -1)
        if fd >= 0:
            os.close(fd)

    def close(self) -> None:
        """Write what is queued and close every kept file."""
        self.flush()
        for path in list(self.fds):
            self._close(path)
