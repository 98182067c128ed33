"""A fault as operations: what to change to inject it, and what undoes it (pure).

Kernel operations name a namespace by its plan key (a node's, an external host's, the router's)
and an interface inside it; `peer` means the other end of that veth, the underlay switch's port,
which emu/faults.py finds by interface index (Mininet names it, not the plan). Every kernel
object a fault touches lives in the instance's own namespaces, so deleting them (teardown, a
stale sweep) takes the fault with them. Control operations ask emu/'s controllers to stop or
resume a process or to play the node lifecycle; emu/faults.py runs both kinds in order.

- link down: the switch's port to the member (or to the router's port of a rack) goes down;
  the member's eth0 loses carrier, keeping its routes, so bringing the port up heals it;
- loss: an nftables netdev table on the member's interface, ingress and egress, dropping
  `numgen random mod 100 < N` (this kernel has no netem);
- rate: a tbf qdisc on both ends of the link;
- mtu: the switch port's MTU lowered: larger frames are dropped without an ICMP error (a Linux
  bridge does not fragment), a path MTU black hole for the overlay's full-size packets.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..plan.model import Plan
from .model import Fault, rate_bits

TABLE_PREFIX = "tbfault_"  # nftables tables the faults create (netdev family)


@dataclass(frozen=True)
class Link:
    """Set an interface (or its switch-side peer) up or down, or its MTU."""

    netns: str  # plan key of the namespace: n1, r0, x0
    dev: str
    peer: bool = True  # the underlay switch's end of `dev`
    state: str = ""  # up | down | "" (leave)
    mtu: int = 0  # 0: leave


@dataclass(frozen=True)
class Nft:
    netns: str
    script: str


@dataclass(frozen=True)
class Tc:
    netns: str
    dev: str
    peer: bool
    args: tuple[str, ...]  # after `tc qdisc`; `{dev}` is where the interface goes
    check: bool = True  # an undo deletes what may already be gone (namespace deleted, node replaced)


@dataclass(frozen=True)
class Control:
    """Ask emu/ to stop or resume something: the agent's listeners of a pod, a dnsmasq, a node's
    kube-proxy or bird, or to play the node lifecycle (`node-not-ready`, `node-ready`)."""

    what: str  # close-pod | open-pod | delete-pod | stop-dns | start-dns | pause-proxy | resume-proxy
    # | freeze-bird | thaw-bird | node-lifecycle-down | node-lifecycle-up | wait-withdrawn
    target: str  # a pod's full name, a node's name


Op = Link | Nft | Tc | Control


@dataclass(frozen=True)
class FaultOps:
    fault: Fault
    inject: tuple[Op, ...]
    undo: tuple[Op, ...]


def _member_link(plan: Plan, fault: Fault) -> tuple[str, str]:
    """(namespace key, interface) of the link a link-level fault targets."""
    if fault.node:
        return plan.node(fault.node).key, "eth0"
    if fault.host:
        return next(x.key for x in plan.externals if x.name == fault.host), "eth0"
    assert plan.network is not None and fault.rack
    for router in plan.network.routers:
        for intf in router.interfaces:
            if intf.subnet == fault.rack:
                return router.key, intf.dev
    raise KeyError(fault.rack)


def table_name(fault: Fault, dev: str) -> str:
    return f"{TABLE_PREFIX}{fault.kind}_{dev}"


def loss_script(table: str, dev: str, percent: int) -> str:
    """The nft script dropping `percent`% of the frames each way on `dev` (netdev ingress/egress)."""
    rule = f"numgen random mod 100 < {percent} drop"
    return (
        f"table netdev {table} {{\n"
        f'  chain ingress {{\n    type filter hook ingress device "{dev}" priority -500; policy accept;\n'
        f"    {rule}\n  }}\n"
        f'  chain egress {{\n    type filter hook egress device "{dev}" priority -500; policy accept;\n'
        f"    {rule}\n  }}\n"
        "}\n"
    )


def tbf_args(rate: str) -> tuple[str, ...]:
    """tc's token bucket at `rate`: a burst of at least one full frame and 10 ms of traffic,
    and 50 ms of queue before drops (a shallow switch buffer)."""
    bits = rate_bits(rate) or 0
    burst = max(1600 * 8, bits // 100) // 8
    return ("replace", "dev", "{dev}", "root", "tbf", "rate", rate, "burst", str(burst), "latency", "50ms")


def plan_ops(plan: Plan, fault: Fault) -> FaultOps:
    """The operations that inject `fault` on this cluster, and those that undo it (checked
    faults only: model.problems returned nothing, model.resolve filled in the defaults)."""
    inject: list[Op] = []
    undo: list[Op] = []
    kind = fault.kind
    if kind in ("link-down", "partition"):
        ns, dev = _member_link(plan, fault)
        inject.append(Link(ns, dev, state="down"))
        undo.append(Link(ns, dev, state="up"))
    elif kind == "loss":
        ns, dev = _member_link(plan, fault)
        table = table_name(fault, dev)
        inject.append(Nft(ns, loss_script(table, dev, fault.percent)))
        undo.append(Nft(ns, f"delete table netdev {table}\n"))
    elif kind == "rate":
        ns, dev = _member_link(plan, fault)
        for peer in (False, True):  # both directions: each end shapes what it sends
            inject.append(Tc(ns, dev, peer, tbf_args(fault.rate)))
            undo.append(Tc(ns, dev, peer, ("del", "dev", "{dev}", "root"), check=False))
    elif kind == "mtu":
        ns, dev = _member_link(plan, fault)
        inject.append(Link(ns, dev, mtu=fault.mtu))
        undo.append(Link(ns, dev, mtu=plan.mtu))
    elif kind == "kill-pod":
        inject.append(Control("close-pod", fault.pod))
        undo.append(Control("open-pod", fault.pod))
    elif kind == "delete-pod":
        inject.append(Control("delete-pod", fault.pod))
    elif kind == "dns-down":
        inject.append(Control("stop-dns", fault.pod))
        undo.append(Control("start-dns", fault.pod))
    elif kind == "kube-proxy-down":
        inject.append(Control("pause-proxy", fault.node))
        undo.append(Control("resume-proxy", fault.node))
    elif kind == "bird-down":
        inject += [Control("freeze-bird", fault.node), Control("wait-withdrawn", fault.node)]
        undo.append(Control("thaw-bird", fault.node))
    elif kind == "node-down":
        node = plan.node(fault.node)
        # A dead node: its link goes dark and everything on it stops at once; then the control
        # plane's timers run (node-lifecycle-down: NotReady, then eviction).
        inject.append(Link(node.key, "eth0", state="down"))
        pods = sorted(p.full_name for p in plan.pods_on(node.name))
        inject += [Control("stop-dns" if _dns(plan, p) else "close-pod", p) for p in pods]
        inject.append(Control("pause-proxy", node.name))
        if plan.routing == "bgp":
            inject.append(Control("freeze-bird", node.name))
        inject.append(Control("node-lifecycle-down", node.name))
        undo.append(Link(node.key, "eth0", state="up"))
        if plan.routing == "bgp":
            undo.append(Control("thaw-bird", node.name))
        undo += [Control("start-dns" if _dns(plan, p) else "open-pod", p) for p in pods]
        undo += [Control("resume-proxy", node.name), Control("node-lifecycle-up", node.name)]
    return FaultOps(fault, tuple(inject), tuple(undo))


def _dns(plan: Plan, full_name: str) -> bool:
    return any(p.full_name == full_name and p.served_by == "dnsmasq" for p in plan.pods)
