"""Named network namespaces deleted in-process, as `ip netns del` deletes them (emu/).

The same result as `ip netns del NAME` for each name: the bind mount on /run/netns/NAME lazily
unmounted (umount2 MNT_DETACH), then the file unlinked; the kernel destroys the namespace, and
the veths in it, once nothing else holds it. The difference is cost, at 10,000 pods (issue 18):

- each unmount ends by waiting for an RCU grace period (namespace_unlock), and so does each
  unlink of a file that is still a mount point in another mount namespace (__detach_mounts):
  a Mininet shell of any instance started while our pods existed holds a private copy of
  their mounts. One by one, that is two grace periods per namespace. Here a few threads share
  each grace period: concurrent callers wait for the same one.
- such an unlink also walks every mount of this mount namespace looking for one on the file
  (__is_local_mountpoint), and `ip netns del` unlinks each name right after its own unmount,
  while the other pods' mounts are still there (the k-th walk visits N-k of them). Here every
  name is unmounted first, then every file unlinked: the walks see only the mounts of others.

What could not be removed is returned, not raised (as `ip -force` goes on): the caller's final
sweep (cleanup.py) finds it and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

MNT_DETACH, UMOUNT_NOFOLLOW = 0x2, 0x8
THREADS = 8  # waiters that share a grace period; more gained nothing measurable on 2 cores

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)


def _umount(path: str) -> int:
    """0, or the errno of a failed unmount (EINVAL: not a mount point, e.g. a half-made name)."""
    if _libc.umount2(path.encode(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0:
        return 0
    return ctypes.get_errno()


def _unlink(path: str) -> int:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return 0  # already gone: deleted is what was asked
    except OSError as exc:
        return exc.errno or errno.EIO
    return 0


def _each(fn: Callable[[str], int], paths: Sequence[str], threads: int) -> dict[str, int]:
    """fn over every path, from `threads` threads (ctypes and os release the GIL in the call)."""
    if threads <= 1 or len(paths) < 2 * threads:
        return {p: e for p in paths if (e := fn(p))}
    parts = [paths[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads, thread_name_prefix="netns-del") as pool:
        found = pool.map(lambda part: {p: e for p in part if (e := fn(p))}, parts)
        return {p: e for part in found for p, e in part.items()}


def delete_netns(folder: str, names: Sequence[str], threads: int = THREADS) -> dict[str, str]:
    """`ip -force netns del` of every name: returns name -> why it is still there (empty: all gone)."""
    paths = [os.path.join(folder, n) for n in names]
    unmounted = _each(_umount, paths, threads)  # EINVAL (nothing mounted) still lets the unlink go on
    failed = _each(_unlink, paths, threads)
    out: dict[str, str] = {}
    for name, path in zip(names, paths):
        if path in failed:
            err = unmounted.get(path) if unmounted.get(path) not in (None, errno.EINVAL) else failed[path]
            out[name] = os.strerror(err or failed[path])
    return out
