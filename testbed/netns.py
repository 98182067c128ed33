"""Enter network namespaces from Python: the kernel-facing helper shared by agent/, traffic/ and emu/.

Where it sits: the bottom layer (ARCHITECTURE.md), beside errors.py and wire/, so that agent/,
traffic/ and emu/ all import it and none of them imports another for it. emu/ creates the
namespaces (one per pod, one per node); the agent (testbed/agent/) opens its listening sockets
inside every pod namespace, and the prober (traffic/prober.py) opens its client sockets inside
each probe's source namespace. Both use this module, because Python 3.11 has
no os.setns.

The trick that makes one process serve many namespaces: a socket belongs to the namespace that was
current *when it was created* and keeps it forever. So we enter a namespace, create sockets, return;
connect/bind/send on those sockets afterwards need no namespace switching at all.

setns(2) with CLONE_NEWNET changes the namespace of the calling *thread* only; we always save
/proc/thread-self/ns/net first and restore it, so other threads and later code are unaffected.
"""

from __future__ import annotations

import ctypes
import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000

# glibc by its soname: ctypes.util.find_library("c") answers the same on Debian but runs
# `ldconfig -p` in a child process to say so, at every start of every process that loads a
# module opening libc (the testbed's and each agent's: 10-150 ms of wall time on a busy VM)
LIBC = "libc.so.6"
_libc = ctypes.CDLL(LIBC, use_errno=True)
_libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
_libc.setns.restype = ctypes.c_int


class NetnsReturnError(RuntimeError):
    """The thread could not go back to its own namespace: nothing it does next can be trusted.

    Not an OSError on purpose, so that callers catching "this namespace is unusable" (OSError)
    for one pod do not swallow it and carry on creating sockets in the wrong namespace.
    """


def setns_fd(fd: int, what: str = "") -> None:
    """Move the calling thread into the network namespace open at fd (what names it in errors)."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns into network namespace {what or fd!r} failed: {os.strerror(err)}")


def open_netns(path: str) -> int:
    """Open a namespace file (/run/netns/NAME or /proc/PID/ns/net) and return its fd."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot open network namespace {path!r}: {exc.strerror}") from None


def setns(path: str) -> None:
    """Move the calling thread into the network namespace at path (no way back: see in_netns)."""
    fd = open_netns(path)
    try:
        setns_fd(fd, path)
    finally:
        os.close(fd)


@contextmanager
def in_netns(path: str) -> Iterator[None]:
    """Run the body inside the network namespace at path, then always return to the original one.

    An empty path means "stay where we are", so callers can treat the current namespace like any
    other source (an external host, a test running in the root namespace).
    """
    if not path:
        yield
        return
    with NetnsSwitcher() as switcher:
        with switcher.entered(path):
            yield


class NetnsSwitcher:
    """Keeps namespace fds open so that entering the same namespaces many times costs one syscall.

    The prober enters each source namespace once per batch of probes; reopening the file every time
    would double the cost. Use as a context manager: it closes every fd and (if needed) returns the
    thread to the namespace it started in.
    """

    def __init__(self) -> None:
        # The thread's own namespace, saved before we ever leave it.
        self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._fds: dict[str, int] = {}
        self._away = False

    def __enter__(self) -> NetnsSwitcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fd(self, path: str) -> int:
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = open_netns(path)
        return fd

    @contextmanager
    def entered(self, path: str) -> Iterator[None]:
        """Enter path for the body; an empty path is the thread's home namespace (no switch)."""
        if not path:
            yield
            return
        setns_fd(self.fd(path), path)
        self._away = True
        try:
            yield
        finally:
            self.go_home()

    def go_home(self) -> None:
        if self._away:
            try:
                setns_fd(self._home, "/proc/thread-self/ns/net (original)")
            except OSError as exc:
                raise NetnsReturnError(str(exc)) from exc
            self._away = False

    def forget(self, path: str) -> None:
        """Close the cached fd of a namespace that is going away (so it can really be freed)."""
        fd = self._fds.pop(path, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        try:
            self.go_home()
        finally:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
            if self._home >= 0:
                os.close(self._home)
                self._home = -1


NOFILE_CEILING = 1 << 20  # what root raises the hard limit to at most (also capped by fs.nr_open)


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (one fd per socket adds up); return it.

    As root the hard limit itself is raised first, up to fs.nr_open: a login's hard limit
    (often 20,000 or less) is not the machine's, and the agent holds a socket per pod port,
    so it would stop a cluster of 20,000 pods that the kernel and memory allow."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if os.geteuid() == 0 and hard != resource.RLIM_INFINITY:
        try:
            with open("/proc/sys/fs/nr_open", encoding="ascii") as handle:
                ceiling = min(int(handle.read()), NOFILE_CEILING)
            if ceiling > hard:
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, ceiling))
                hard = ceiling
        except (OSError, ValueError):
            pass
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            return soft
    return soft
