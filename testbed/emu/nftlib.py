"""`nft -f` without a process: libnftables (the library the nft command wraps) in our own thread (emu/).

Why: a NetworkPolicy change or a relabel is a small transaction on every node (a few set
elements), yet `ip netns exec NS nft -f -` costs a fork, a mount namespace, sysfs remounted and
nft's start-up, per node: 15-20 ms each on a busy 2-core VM, 0.2 s for 10 nodes, against a
transaction of well under 1 ms. A netlink socket belongs to the namespace that was current
when it was created, so the calling thread enters the node's namespace (testbed/netns.py),
makes a libnftables context there (its socket is opened in that namespace), runs the script,
frees the context and returns home. Threads run these at once: ctypes releases the GIL.

Same input, same transaction semantics and the same error text as the nft command. When the
library cannot be loaded (not this Debian's nftables package), `available()` is False and the
runner falls back to the command.
"""

from __future__ import annotations

import ctypes
import functools

from ..netns import in_netns

NETNS_DIR = "/run/netns"


class NftError(OSError):
    """The script was refused: the library's error text (what `nft -f` prints)."""


@functools.cache
def _lib() -> ctypes.CDLL | None:
    name = "libnftables.so.1"  # by its soname, without find_library's `ldconfig -p` (netns.py: LIBC)
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    return lib


def available() -> bool:
    return _lib() is not None


def run_script(netns: str, text: str) -> None:
    """Run `text` as `nft -f -` would, inside the named namespace; NftError when refused."""
    lib = _lib()
    if lib is None:
        raise NftError("libnftables is not available")
    with in_netns(f"{NETNS_DIR}/{netns}"):
        ctx = lib.nft_ctx_new(0)  # NFT_CTX_DEFAULT; its netlink socket opens in this namespace
        if not ctx:
            raise NftError("nft_ctx_new failed")
        try:
            lib.nft_ctx_buffer_output(ctx)  # nothing on our stdout
            lib.nft_ctx_buffer_error(ctx)
            if lib.nft_run_cmd_from_buffer(ctx, text.encode()) != 0:
                raise NftError((lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace").strip())
        finally:
            lib.nft_ctx_free(ctx)
