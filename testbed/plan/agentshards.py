"""Which agent process serves which pods: a pure plan of shards under an open-files limit.

Where it sits: plan/, read by emu/agent_proc.py, which starts one agent (testbed/agent/) per
shard, each a Daemon (emu/daemon.py). One agent holds one file descriptor per TCP/UDP port it
serves plus one raw SCTP socket per namespace; past its RLIMIT_NOFILE the kernel refuses the
next socket (EMFILE). A container without CAP_SYS_RESOURCE cannot raise the hard limit (20,000
on the machine where 9,902 pods left a third unserved), so instead of one process we plan as
many as the pods need, each below the limit with room left for the connections it accepts.

Rules, so that a reload never needs a socket in two processes at once:
  - one group per network namespace: hostNetwork pods share their node's, and two raw SCTP
    sockets in one namespace would both answer an INIT (one of them with an ABORT);
  - sticky: a group stays in the shard that served it before while that shard has room;
  - new groups go to the first shard with room, in order; a new shard only when none has.
Same inputs, same shards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import TestbedError

# Descriptors an agent holds besides its sockets: stdio, epoll, the wakeup pipe, its home
# namespace, one namespace being entered, an access log being written.
FIXED_FILES = 16
CONNECTION_SHARE = 8  # one eighth of the limit is kept for accepted connections ...
MAX_CONNECTION_RESERVE = 1024  # ... up to this many (bursts of probes to one agent)
MAX_SHARDS = 256


class AgentLimitError(TestbedError):
    """The pods cannot be served under the agent's open-files limit (exit code 1)."""


@dataclass(frozen=True)
class Group:
    """The pods of one network namespace and the sockets they need."""

    key: str  # the namespace: a pod's key, or "node:<name>" for hostNetwork pods
    files: int


def namespace_files(ports: int, ipv6: bool) -> int:
    """Sockets the agent holds for the pods of one namespace: one per TCP/UDP port plus the raw
    SCTP socket, once per family served. A namespace served on IPv6 too (a dual-stack pod, and a
    single-stack IPv6 one, whose config entry has an `ip6`: agent/endpoints6.py) holds an IPv6
    listener beside each IPv4 one and a raw IPv6 SCTP socket beside the IPv4 one (agent/server.py),
    twice the sockets: counting one family planned dual-stack shards twice too full (EMFILE)."""
    return (1 + ports) * (2 if ipv6 else 1)


def reserve(limit: int) -> int:
    """Descriptors of one agent that are not listening sockets."""
    return FIXED_FILES + min(MAX_CONNECTION_RESERVE, limit // CONNECTION_SHARE)


def capacity(limit: int) -> int:
    """Listening sockets one agent may hold under `limit` open files."""
    return limit - reserve(limit)


def plan_shards(groups: Sequence[Group], limit: int, previous: Mapping[str, int] | None = None) -> dict[str, int]:
    """Assign every group to a shard (0, 1, ...) so that no shard needs more than capacity(limit).

    `previous` is the last assignment (group key -> shard): groups keep their shard while it
    has room. Raises AgentLimitError, one line, when a group alone does not fit or more than
    MAX_SHARDS processes would be needed."""
    room = capacity(limit)
    previous = previous or {}
    load: dict[int, int] = {}
    out: dict[str, int] = {}
    for group in groups:
        if group.files > room:
            raise AgentLimitError(
                f"the agent cannot serve {group.key}: it needs {group.files} sockets, and an open-files limit "
                f"of {limit} leaves room for {max(room, 0)} (the limit less {reserve(limit)} kept for connections)"
            )
    later: list[Group] = []
    for group in groups:  # sticky first, in order, so that what stays never moves for a newcomer
        shard = previous.get(group.key)
        if shard is not None and load.get(shard, 0) + group.files <= room:
            load[shard] = load.get(shard, 0) + group.files
            out[group.key] = shard
        else:
            later.append(group)
    for group in later:
        shard = 0
        while load.get(shard, 0) + group.files > room:
            shard += 1
        if shard >= MAX_SHARDS:
            raise AgentLimitError(
                f"the agent would need more than {MAX_SHARDS} processes under an open-files limit of {limit}"
            )
        load[shard] = load.get(shard, 0) + group.files
        out[group.key] = shard
    return out
