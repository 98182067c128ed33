"""The ledger: what one emulation instance created, so teardown and `clean` can undo it.

Lives in /run/testbed/<tag>/ (tmpfs: gone after a reboot, like the namespaces it lists).
Several instances may run at once, so who may clean what is decided by proof, not by a
listing that can go stale while it is read:

- An instance holds an exclusive flock on /run/testbed/<tag>/lock for its whole life (the
  descriptor is not inherited by its children, and the kernel drops the lock when the owner
  dies, kill -9 included). Its ledger records the owner's pid and start time
  (/proc/<pid>/stat field 22), so a recycled pid or a zombie counts as dead.
- A tag folder is created with mkdir (EEXIST: another tag), its lock taken and its ledger
  written while the registry lock (an flock on /run/testbed) is held; a stale sweep holds
  the same lock while it decides and removes. So a sweep never sees a half-created instance,
  and no instance is created while a sweep works (it waits a moment for the lock).
- A sweep claims a tag only if it can take the tag's lock without blocking AND the recorded
  owner is dead; it keeps that lock until the folder is gone, so no two sweepers race either.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .. import PREFIX
from . import podfs
from .runner import Runner

STATE_DIR = os.environ.get("TESTBED_STATE_DIR", "/run/testbed")
LOCK = "lock"
# A folder with no readable ledger and a free lock was left by a creator that died before
# writing it, or belongs to an older testbed version between its mkdir and its first write
# (which does not take the registry lock): only the first stays this old.
UNRECORDED_GRACE_S = 30.0


def netns_name(tag: str, key: str) -> str:
    """The named netns of a pod/node/host: tb-<tag>-<key> (e.g. tb-3fa2-default_web-x)."""
    return f"{PREFIX}-{tag}-{key}"


def netns_prefix(tag: str | None = None) -> str:
    return f"{PREFIX}-{tag}-" if tag else f"{PREFIX}-"


# -- liveness ---------------------------------------------------------------------------
def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (after the command name, which may hold spaces)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22), None if it is gone."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def owner_alive(pid: int, start: int | None) -> bool:
    """Is the process that recorded (pid, start) still running? A zombie (Z) or dead (X)
    process is not, nor is another process that was given the same pid later."""
    if pid <= 0:
        return False
    fields = _stat_fields(pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    if start is None:  # a ledger of an older version: no start time recorded
        return True
    try:
        return int(fields[19]) == start
    except (IndexError, ValueError):
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- locks ------------------------------------------------------------------------------
def _ensure_state_dir() -> None:
    os.makedirs(STATE_DIR, exist_ok=True)


@contextmanager
def registry() -> Iterator[None]:
    """Hold the registry lock: tags are created, and stale ones claimed, only under it. It is
    an flock on /run/testbed itself: no lock file to leave behind (limits.py shares it)."""
    _ensure_state_dir()
    fd = os.open(STATE_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _lock_tag(tag: str, create: bool) -> int | None:
    """An fd holding the exclusive lock of `tag`'s folder, or None if someone holds it (or the
    folder is gone). The lock file checked after locking is the one still at the path, so a
    folder removed (and perhaps re-made) meanwhile is never mistaken for the one locked."""
    path = os.path.join(STATE_DIR, tag, LOCK)
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            raise OSError("lock file replaced")
    except OSError:
        os.close(fd)
        return None
    return fd


@dataclass
class Ledger:
    tag: str
    owner: int
    netns: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    owner_start: int | None = None
    remains: dict[str, list] = field(default_factory=dict)  # what an incomplete teardown left
    lock_fd: int | None = field(default=None, repr=False, compare=False)

    @property
    def dir(self) -> str:
        return os.path.join(STATE_DIR, self.tag)

    @classmethod
    def create(cls) -> Ledger:
        """A fresh tag, its folder, its lock (held until `remove`/`release`) and its ledger."""
        with registry():
            for _ in range(1000):
                tag = secrets.token_hex(2)
                try:
                    os.mkdir(os.path.join(STATE_DIR, tag))
                except FileExistsError:
                    continue  # a tag in use (or being cleaned): pick another
                ledger = cls(tag=tag, owner=os.getpid(), owner_start=process_start(os.getpid()))
                ledger.lock_fd = _lock_tag(tag, create=True)
                try:
                    if ledger.lock_fd is not None:
                        ledger.save()
                        return ledger
                except FileNotFoundError:
                    ledger.release()
                # The folder vanished under us: only an older testbed version's sweep (which
                # takes no registry lock and removes a folder with no ledger yet) does that.
        raise OSError(f"could not create an instance folder in {STATE_DIR}")

    def save(self) -> None:
        tmp = os.path.join(self.dir, f"ledger.json.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(
                {
                    "tag": self.tag,
                    "owner": self.owner,
                    "owner_start": self.owner_start,
                    "netns": self.netns,
                    "pids": self.pids,
                    "files": self.files,
                    "remains": self.remains,
                },
                handle,
            )
        os.replace(tmp, os.path.join(self.dir, "ledger.json"))

    def add_netns(self, names: list[str]) -> None:
        self.netns.extend(names)
        self.save()

    def add_pid(self, pid: int) -> None:
        self.pids.append(pid)
        self.save()

    def release(self) -> None:
        """Drop the lock (the folder stays): from now on a stale sweep may take it over."""
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    def remove(self) -> None:
        """Remove the folder, then drop the lock: nobody can claim it in between."""
        podfs.unmount(Runner(), self.dir)  # its pods' /etc tmpfs: rmtree cannot remove a mount point
        shutil.rmtree(self.dir, ignore_errors=True)
        self.release()

    @classmethod
    def load(cls, tag: str) -> Ledger | None:
        try:
            with open(os.path.join(STATE_DIR, tag, "ledger.json"), encoding="utf-8") as handle:
                raw = json.load(handle)
            start = raw.get("owner_start")
            return cls(
                tag=raw["tag"],
                owner=int(raw["owner"]),
                netns=list(raw.get("netns", [])),
                pids=[int(p) for p in raw.get("pids", [])],
                files=dict(raw.get("files", {})),
                owner_start=int(start) if start is not None else None,
                remains=dict(raw.get("remains") or {}),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def owner_alive(self) -> bool:
        return owner_alive(self.owner, self.owner_start)


def all_tags() -> Iterator[str]:
    try:
        names = sorted(os.listdir(STATE_DIR))
    except FileNotFoundError:
        return
    for name in names:
        if not name.startswith(".") and os.path.isdir(os.path.join(STATE_DIR, name)):
            yield name


def claim_dead(tag: str, now: float | None = None) -> Ledger | None:
    """Take over `tag` if its owner is provably dead: its lock is free (no live owner holds
    it, no other sweeper claimed it) and the owner recorded in its ledger is gone. Call with
    the registry lock held. The claim holds the tag's lock: `remove()` or `release()` it."""
    fd = _lock_tag(tag, create=False)  # never create it: that would race with its owner's rmtree
    if fd is None and os.path.exists(os.path.join(STATE_DIR, tag, LOCK)):
        return None  # held: by its live owner, or by another sweeper
    # No lock file: an older version's folder (it takes none), or a creator that died before
    # making it; only lock files are created under the registry lock, so none appears now.
    ledger = Ledger.load(tag)
    if ledger is None:
        try:
            age = (now if now is not None else time.time()) - os.stat(os.path.join(STATE_DIR, tag)).st_mtime
        except OSError:
            age = 0.0
        if age < UNRECORDED_GRACE_S:
            if fd is not None:
                os.close(fd)
            return None
        ledger = Ledger(tag=tag, owner=0)
    elif ledger.owner_alive():
        if fd is not None:  # a free lock and a live owner: it ended with things left behind
            os.close(fd)  # (ledger `remains`) and has not exited yet
        return None
    ledger.lock_fd = fd
    return ledger
