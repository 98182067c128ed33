"""The in-process conntrack flush's request has ctnetlink's layout (the kernel side: integration)."""

from __future__ import annotations

import socket
import struct

from testbed.emu.ctflush import IPCTNL_MSG_CT_DELETE, NFNL_SUBSYS_CTNETLINK, NLM_F_ACK, NLM_F_REQUEST, flush_request


def test_flush_request_is_a_delete_without_a_tuple():
    msg = flush_request(seq=9)
    length, kind, flags, seq, pid = struct.unpack_from("=IHHII", msg)
    assert (length, seq, pid) == (len(msg), 9, 0) and length == 16 + 4  # header + nfgenmsg, no attribute
    assert kind == (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE
    assert flags == NLM_F_REQUEST | NLM_F_ACK
    assert struct.unpack_from("!BBH", msg, 16) == (socket.AF_INET, 0, 0)
