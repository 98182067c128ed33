"""Named network namespaces made in-process, as `ip netns add` makes them (emu/).

The same objects as `ip netns add NAME`: an empty file /run/netns/NAME with the new namespace
bind-mounted on it, /run/netns itself a shared mount point (so that an unmount propagates to
the mount namespaces that copied it). The difference is cost: `ip netns add` marks /run/netns
shared again, recursively over every namespace mount under it, once per namespace it adds, so
adding the k-th namespace visits k mounts (`change_mnt_propagation`, `invent_group_ids` in a
perf profile of a 10,000-pod build). Here /run/netns is marked once per batch, and no `ip`
process is started. `ip netns del`, `ip netns list` and `ip netns exec` see no difference.

unshare(CLONE_NEWNET) moves only the calling thread; it always returns to the namespace it
started in (testbed.netns).
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Sequence

from ..errors import KernelError
from ..netns import CLONE_NEWNET, LIBC, NetnsReturnError, setns_fd

MS_BIND, MS_REC, MS_SHARED = 0x1000, 0x4000, 1 << 20

_libc = ctypes.CDLL(LIBC, use_errno=True)  # netns.py says why by name
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p)
_libc.unshare.argtypes = (ctypes.c_int,)


def _check(result: int, what: str, path: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise KernelError([what, path], err, os.strerror(err))


def _mount(source: str, target: str, flags: int, fstype: str | None = None) -> int:
    return int(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags, None))


def shared_run_dir(folder: str) -> None:
    """/run/netns exists and is a shared mount point (iproute2's netns_add, done once)."""
    os.makedirs(folder, mode=0o755, exist_ok=True)
    while _mount("", folder, MS_SHARED | MS_REC, "none") != 0:
        err = ctypes.get_errno()
        if err != errno.EINVAL:  # EINVAL: not a mount point yet; make it one, as ip does
            raise KernelError(["mount", "--make-rshared", folder], err, os.strerror(err))
        _check(_mount(folder, folder, MS_BIND | MS_REC, "none"), "mount --rbind", folder)


def _mount_points(folder: str, names: Sequence[str]) -> list[str]:
    """The empty files the namespaces are bind-mounted on: the first made, the others hard links
    to it. A new inode costs the file system an allocation (on ext4 without a journal, a scan
    past every recently deleted inode: 1.4-2 ms a file on a VM where other clusters come and go,
    against 0.04 ms a link), and a mount point needs nothing of its file but its name. `ip netns
    del` unlinks a name as it would a file. Where links are refused (another file system, a link
    count limit), a file is made. Raises KernelError for a name that exists, having removed the
    files it made."""
    made: list[str] = []
    anchor = ""
    try:
        for name in names:
            path = os.path.join(folder, name)
            try:
                if anchor:
                    try:
                        os.link(anchor, path)
                        made.append(path)
                        continue
                    except OSError as exc:
                        if exc.errno not in (errno.EMLINK, errno.EPERM, errno.EXDEV, errno.EOPNOTSUPP):
                            raise
                os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))
            except OSError as exc:
                raise KernelError(["ip", "netns", "add", name], exc.errno or 1, exc.strerror or str(exc)) from None
            made.append(path)
            anchor = path
    except BaseException:
        for path in made:
            os.unlink(path)
        raise
    return made


def add_netns(folder: str, names: Sequence[str], mark: bool = True) -> None:
    """`ip netns add` of every name, in order, in this thread; the first failure raises
    KernelError naming it (a name that exists is refused, as ip refuses it), and no name of
    this call is left behind unmounted. `mark=False`: the caller already ran shared_run_dir
    (several threads adding batches at once mark the folder once, not once a batch)."""
    if not names:
        return
    if mark:
        shared_run_dir(folder)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    paths = _mount_points(folder, names)
    done = 0
    try:
        for path in paths:
            _check(_libc.unshare(CLONE_NEWNET), "unshare --net for", path)
            try:
                _check(_mount("/proc/thread-self/ns/net", path, MS_BIND), "mount --bind", path)
            finally:
                try:
                    setns_fd(home, "/proc/thread-self/ns/net (original)")
                except OSError as exc:
                    raise NetnsReturnError(str(exc)) from exc
            done += 1
    except BaseException:
        for path in paths[done:]:
            os.unlink(path)  # the mount points, as `ip netns add` removes its own on failure
        raise
    finally:
        os.close(home)
