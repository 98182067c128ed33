"""The packet the tracer follows (rules/tracer.py): the first packet of a connection, or a reply (pure)."""

from __future__ import annotations

from dataclasses import dataclass

ENTRIES = ("pod", "underlay", "local")


@dataclass(frozen=True)
class Packet:
    """A packet as a node's netfilter sees it arrive.

    `entry`: pod (in on cni0 from a pod of this node), underlay (in on eth0 from another node or
    host), local (sent by the node itself). `ct_state`: new for a connection's first packet,
    established or related for its replies."""

    src: str
    dst: str
    dport: int | None = None  # None for ICMP
    protocol: str = "TCP"  # TCP | UDP | SCTP | ICMP
    entry: str = "pod"
    ct_state: str = "new"

    def __post_init__(self) -> None:
        if self.entry not in ENTRIES:
            raise ValueError(f"entry must be one of {', '.join(ENTRIES)}, got {self.entry!r}")

    def __str__(self) -> str:
        port = f":{self.dport}" if self.dport is not None else ""
        return f"{self.src} -> {self.dst}{port}/{self.protocol.upper()} from {self.entry}"
