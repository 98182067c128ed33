"""What a fault is, where it applies, and whether it makes sense for a Plan (pure).

A fault has a kind and one target: a node, an external host, a rack (the link between the rack's
switch and the underlay router) or a pod. Faults are named by (kind, target), so the action that
undoes one (`recover`) names the same pair. Kubernetes' timers (the node lifecycle controller's
grace period, the default NoExecute toleration) are settings with upstream defaults and a time
scale, so an experiment need not wait five minutes for an eviction.

Used by experiment/load.py and check.py (decoding, validation), faults/ops.py (what to change in
the kernel), emu/faults.py (applying it) and the shell's `fault` command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..plan.model import Plan, PodPlan

# Every kind, with the target fields it takes.
TARGETS: dict[str, tuple[str, ...]] = {
    "node-down": ("node",),
    "link-down": ("node", "host"),
    "partition": ("rack",),
    "loss": ("node", "host", "rack"),
    "rate": ("node", "host", "rack"),
    "mtu": ("node", "host"),
    "kill-pod": ("pod",),
    "delete-pod": ("pod",),
    "dns-down": ("pod",),
    "kube-proxy-down": ("node",),
    "bird-down": ("node",),
}
KINDS = tuple(TARGETS)
# Refused with one line: this kernel cannot emulate them.
NETEM_KINDS = ("delay", "jitter")
NETEM_MESSAGE = (
    "{kind} is not emulated: it needs the kernel module sch_netem (netem), which this kernel does not have; "
    "loss (nftables) and rate (tbf) are"
)
# Faults nothing undoes: the ReplicaSet replaces a deleted pod.
NO_UNDO = ("delete-pod",)
MAX_RATE_BITS = 100_000_000_000  # 100 Gbit/s
_RATE = re.compile(r"^([0-9]{1,12})(bit|kbit|mbit|gbit)$")
_UNITS = {"bit": 1, "kbit": 1_000, "mbit": 1_000_000, "gbit": 1_000_000_000}


@dataclass(frozen=True)
class Timers:
    """Kubernetes' timers (upstream defaults) and BGP's, all in seconds, and a time scale.

    node_monitor_grace_period: kube-controller-manager --node-monitor-grace-period (40 s): a node
    whose kubelet has not reported for this long is NotReady (condition Unknown), its pods'
    endpoints not ready. toleration_seconds: --default-unreachable-toleration-seconds (300 s), the
    NoExecute toleration the DefaultTolerationSeconds admission plugin gives every pod: its pods
    are evicted that long after the taint. A scale of 0.01 turns 40 s into 0.4 s. (BGP's hold
    time is bird's own timer, in real seconds: the topology's bgp.holdTime.)
    """

    node_monitor_grace_period: float = 40.0
    toleration_seconds: float = 300.0
    time_scale: float = 1.0

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale


@dataclass(frozen=True)
class Fault:
    """One fault: a kind and exactly one target; `percent`, `rate`, `mtu` and `evict` as the kind needs."""

    kind: str
    node: str = ""
    host: str = ""
    rack: str = ""
    pod: str = ""  # a pod's name or namespace/name
    percent: int = 0  # loss: packets dropped, in percent, each way
    rate: str = ""  # rate: tc's notation, e.g. 10mbit
    mtu: int = 0  # mtu: the underlay path's MTU at that member (0: the pods' MTU minus 50)
    evict: bool = True  # node-down: go on to the NoExecute eviction (False: stop at NotReady)

    @property
    def target(self) -> str:
        """`node kind-worker`, `rack rack2`, `pod default/web-...`: how messages name it."""
        for key in ("node", "host", "rack", "pod"):
            value = getattr(self, key)
            if value:
                return f"{key} {value}"
        return ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.target)

    def describe(self) -> str:
        extra = {
            "loss": f" {self.percent}%",
            "rate": f" {self.rate}",
            "mtu": f" {self.mtu}" if self.mtu else "",
        }.get(self.kind, "")
        return f"fault {self.kind}{extra} on {self.target}"


@dataclass(frozen=True)
class Recover:
    """Undo one active fault (same kind and target), or every active one (`fault` None)."""

    fault: Fault | None = None

    def describe(self) -> str:
        if self.fault is None:
            return "recover from every active fault"
        return f"recover from {self.fault.kind} on {self.fault.target}"


def rate_bits(rate: str) -> int | None:
    """`10mbit` -> 10,000,000; None when it is not tc's notation (bit, kbit, mbit, gbit)."""
    m = _RATE.match(rate)
    return int(m.group(1)) * _UNITS[m.group(2)] if m else None


def find_pod(plan: Plan, name: str) -> PodPlan | None:
    """A pod by `ns/name`, or by name when unique (kube-system's included: CoreDNS replicas)."""
    return plan.find_pod(name)


def dns_replicas(plan: Plan) -> list[PodPlan]:
    """The cluster DNS pods (CoreDNS, served by dnsmasq), in name order."""
    return sorted((p for p in plan.pods if p.served_by == "dnsmasq"), key=lambda p: p.full_name)


def resolve(fault: Fault, plan: Plan) -> Fault:
    """Fill in defaults that depend on the cluster: dns-down's replica, mtu's value."""
    import dataclasses

    if fault.kind == "dns-down" and not fault.pod:
        replicas = dns_replicas(plan)
        if replicas:
            return dataclasses.replace(fault, pod=replicas[0].full_name)
    if fault.kind == "mtu" and not fault.mtu:
        pod_mtu = plan.network.pod_mtu if plan.network is not None else plan.mtu
        return dataclasses.replace(fault, mtu=pod_mtu - 50)
    if fault.kind in ("kill-pod", "delete-pod", "dns-down") and fault.pod:
        pod = find_pod(plan, fault.pod)
        if pod is not None:
            return dataclasses.replace(fault, pod=pod.full_name)
    return fault


def _known(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return f" (known: {shown}{', ...' if len(names) > limit else ''})" if names else ""


def problems(fault: Fault, plan: Plan, recovering: bool = False) -> list[tuple[str, str]]:
    """(field, message) for each reason this fault cannot apply to this cluster; [] when it can.
    `recovering`: only the kind and target matter (a recovery names the fault, not its values)."""
    if fault.kind in NETEM_KINDS:
        return [("", NETEM_MESSAGE.format(kind=fault.kind))]
    if fault.kind not in TARGETS:
        return [("kind", f"unknown fault kind {fault.kind[:40]!r} (known: {', '.join(KINDS)})")]
    allowed = TARGETS[fault.kind]
    given = [k for k in ("node", "host", "rack", "pod") if getattr(fault, k)]
    out: list[tuple[str, str]] = []
    for k in given:
        if k not in allowed:
            out.append((k, f"{fault.kind} does not take a {k} (it takes {' or '.join(allowed)})"))
    if len(given) > 1:
        out.append(("", f"give one target, got {' and '.join(given)}"))
    if not given and fault.kind != "dns-down":
        out.append(("", f"{fault.kind} needs a target: {' or '.join(allowed)}"))
    if out:
        return out
    nodes = [n.name for n in plan.nodes]
    if fault.node and fault.node not in nodes:
        out.append(("node", f"no node named {fault.node[:60]!r}{_known(nodes)}"))
    hosts = [x.name for x in plan.externals]
    if fault.host and fault.host not in hosts:
        out.append(("host", f"no external host named {fault.host[:60]!r}{_known(hosts)}"))
    if fault.rack:
        racks = [s.name for s in plan.network.subnets if s.router_ip] if plan.network is not None else []
        if not racks:
            out.append(("rack", "this underlay has no racks (one subnet, no router): nothing to partition"))
        elif fault.rack not in racks:
            out.append(("rack", f"no rack named {fault.rack[:60]!r} behind the router{_known(racks)}"))
    if fault.pod:
        pod = find_pod(plan, fault.pod)
        if pod is None:
            out.append(("pod", f"no pod named {fault.pod[:60]!r}{_known([p.full_name for p in plan.pods])}"))
        elif fault.kind == "dns-down" and pod.served_by != "dnsmasq":
            names = [p.full_name for p in dns_replicas(plan)]
            out.append(("pod", f"{pod.full_name} is not a cluster DNS replica{_known(names)}"))
    if fault.kind == "dns-down" and not fault.pod and not dns_replicas(plan):
        out.append(("", "this cluster runs no cluster DNS replica"))
    if recovering:
        return out
    if fault.kind == "loss" and not 1 <= fault.percent <= 100:
        out.append(("percent", f"expected a percentage in [1, 100], got {fault.percent}"))
    if fault.kind == "rate":
        bits = rate_bits(fault.rate)
        if bits is None or not 8_000 <= bits <= MAX_RATE_BITS:
            out.append(("rate", f"expected a rate like 10mbit (8kbit to 100gbit), got {fault.rate[:40]!r}"))
    if fault.kind == "mtu" and fault.mtu and not 576 <= fault.mtu <= 9000:
        out.append(("mtu", f"expected an MTU in [576, 9000], got {fault.mtu}"))
    if fault.kind == "bird-down" and plan.routing != "bgp":
        out.append(("node", f"bird-down needs routing bgp (this cluster routes with {plan.routing})"))
    if fault.kind == "kube-proxy-down" and plan.kube_proxy_mode == "none":
        out.append(("node", "this cluster runs no kube-proxy"))
    return out


def check_timers(timers: Timers) -> list[tuple[str, str]]:
    out = []
    for name, value, top in (
        ("nodeMonitorGracePeriod", timers.node_monitor_grace_period, 3600.0),
        ("tolerationSeconds", timers.toleration_seconds, 86400.0),
    ):
        if not 0 <= value <= top:
            out.append((name, f"expected seconds in [0, {top:g}], got {value:g}"))
    if not 0 < timers.time_scale <= 1:
        out.append(("timeScale", f"expected a factor in (0, 1], got {timers.time_scale:g}"))
    longest = timers.node_monitor_grace_period + timers.toleration_seconds
    if timers.scaled(longest) > 600:
        out.append(
            ("timeScale", f"a node failure would take {timers.scaled(longest):.0f} s: at most 600 s once scaled")
        )
    return out


class FaultState:
    """Which faults are active, step after step: an injection of an active fault or a recovery
    of an inactive one is an error (validation and the live injector share these rules)."""

    def __init__(self) -> None:
        self.active: dict[tuple[str, str], Fault] = {}

    def inject(self, fault: Fault) -> str | None:
        if fault.key in self.active:
            return f"{fault.kind} on {fault.target} is already active"
        if fault.kind not in NO_UNDO:  # a deleted pod is replaced: nothing stays active
            self.active[fault.key] = fault
        return None

    def recover(self, recover: Recover) -> tuple[list[Fault], str | None]:
        """The faults this recovery undoes, newest first, or an error."""
        if recover.fault is None:
            undone = list(reversed(self.active.values()))
            self.active.clear()
            return undone, None
        key = recover.fault.key
        if recover.fault.kind in NO_UNDO:
            return [], f"{recover.fault.kind} has no undo: the pod's controller replaces it"
        if key not in self.active:
            active = ", ".join(f"{k} on {t}" for k, t in self.active) or "none"
            return [], f"{recover.fault.kind} on {recover.fault.target} is not active (active: {active})"
        return [self.active.pop(key)], None
