"""The vxlan mode's kernel objects on a node: flannel.1 and the entries flanneld programs.

Part of emu/. What flannel's vxlan backend does on each node, from the plan's VtepPlan:
a VXLAN device (VNI 1, UDP 8472, `nolearning`: nothing is learnt from traffic, flanneld
programs everything), its address 10.244.N.0/32, a permanent neighbour entry per peer (the
peer VTEP's address -> its MAC) and a forwarding entry per peer (that MAC -> the peer's
HOST-IP, where the encapsulated frame is sent); a dual-stack node has flannel-v6.1 beside it,
made the same way by emu/dualstack.py (plan/dualroutes.py). The device and neighbours go in the node's
`ip -batch` (pods.node_batch); the forwarding entries in one `bridge -batch` per node, since
`ip` has no fdb command.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..plan.network import VtepPlan
from .runner import Runner


def vtep_lines(vtep: VtepPlan) -> list[str]:
    """ip -batch lines: the VTEP and its permanent neighbour entries (pure)."""
    lines = [
        f"link add {vtep.dev} address {vtep.mac} mtu {vtep.mtu} type vxlan id {vtep.vni} "
        f"local {vtep.local} dev eth0 dstport {vtep.port} nolearning",
        # flannel-v6.1's /128 without duplicate address detection: nothing else holds it, and a
        # tentative address could not be the source of the node's own traffic for a second
        f"addr add {vtep.address} dev {vtep.dev}" + (" nodad" if ":" in vtep.address else ""),
        f"link set {vtep.dev} up",
    ]
    lines += [f"neigh replace {ip} lladdr {mac} dev {vtep.dev} nud permanent" for ip, mac in vtep.neighbours]
    return lines


def fdb_lines(vtep: VtepPlan) -> list[str]:
    """bridge -batch lines: where to tunnel each peer VTEP's MAC (pure)."""
    return [f"fdb replace {mac} dev {vtep.dev} dst {dst} self permanent" for mac, dst in vtep.fdb]


def apply_fdb(runner: Runner, netns: str, vtep: VtepPlan) -> None:
    lines: Sequence[str] = fdb_lines(vtep)
    if lines:
        runner.run(["bridge", "-n", netns, "-batch", "-"], input="\n".join(lines) + "\n")
