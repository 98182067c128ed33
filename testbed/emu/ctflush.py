"""Flush the conntrack table of namespaces in-process (ctnetlink), as `conntrack -F` does (emu/).

The conformance runner flushes every node's table between steps (a NetworkPolicy decides new
connections; a reused UDP/SCTP 5-tuple must not ride on the previous step's entry). Two programs
per node (`ip netns exec` and `conntrack`) cost 15-40 ms a step, a fifth of a step once blocked
probes no longer wait for their timeout; one IPCTNL_MSG_CT_DELETE without a tuple, sent on a
netfilter netlink socket opened in the node's namespace, is the same flush in microseconds.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterable

from ..netns import NetnsSwitcher

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_DELETE = 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
_NLMSGHDR = struct.Struct("=IHHII")
_NFGENMSG = struct.Struct("!BBH")


def flush_request(seq: int = 1, family: int = socket.AF_INET) -> bytes:
    """IPCTNL_MSG_CT_DELETE with no tuple: every IPv4 entry (conntrack -F's default family), or
    every entry of `family` (AF_INET6: `conntrack -F -f ipv6`)."""
    body = _NFGENMSG.pack(family, 0, 0)
    kind = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


def flush_conntrack(netns_paths: Iterable[str], families: tuple[int, ...] = (socket.AF_INET,)) -> None:
    """Flush each namespace's conntrack table (the entries of each of `families`: a dual-stack
    cluster's IPv6 ones too); an OSError names the namespace that refused."""
    with NetnsSwitcher() as switcher:
        for path in netns_paths:
            with switcher.entered(path):
                sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
            with sock:
                sock.settimeout(5.0)
                sock.bind((0, 0))
                for seq, family in enumerate(families, start=1):
                    sock.send(flush_request(seq, family))
                    reply = sock.recv(65536)
                    _, kind, _, _, _ = _NLMSGHDR.unpack_from(reply)
                    if kind == NLMSG_ERROR:
                        err = -struct.unpack_from("=i", reply, _NLMSGHDR.size)[0]
                        if err:
                            raise OSError(err, f"conntrack flush in {path} failed: {os.strerror(err)}")
