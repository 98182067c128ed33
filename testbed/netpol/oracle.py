"""The oracle: is a flow allowed by the NetworkPolicies, and because of what; pure.

Semantics (networking.k8s.io/v1, kubernetes.io/docs/concepts/services-networking/network-policies):

- A pod is isolated for ingress (egress) only if some policy of its namespace selects it and
  has Ingress (Egress) among its policyTypes. A pod not isolated in a direction allows all
  traffic in that direction.
- An isolated pod allows a flow only if some rule of some selecting policy allows it: its
  peers (any of them; every peer when the rule has none) match the other end, and its ports
  (any; every port when none) match the destination port and protocol. Policies only add.
- A flow needs both: the source pod's egress allows it and the destination pod's ingress
  allows it. An end that is not a pod (a node, an external host, any IP) has no policy.
- Peers: podSelector alone = pods of the policy's namespace; namespaceSelector alone = every
  pod of the matching namespaces; both in one peer = pods matching both (AND); separate peers
  add up (OR). `{}` selects every pod / every namespace.
- ipBlock matches the address only — **including pod addresses** (the choice of most
  implementations, and what the upstream e2e tests expect); except excludes sub-ranges.
- A named port resolves on the destination pod: a container port with that name and the
  rule's protocol; it never matches a destination that is not a pod. endPort makes a range.
- Replies of allowed connections always pass (conntrack); a verdict is about the first packet.
- Traffic between a pod and its own node always passes, whatever the policies (the docs:
  "traffic to and from the node where a Pod is running is always allowed"): in the dataplane it
  crosses the node's input/output hooks, which the compiler leaves alone. Other nodes are
  ordinary addresses, matched by ipBlock only.
- A pod cannot block traffic to itself (it stays inside the pod's own namespace).

With the cluster administrator's tiers (netpol/tiers.py; a World with `tiers`), each direction
is decided in the hierarchy's order: the first matching Admin rule (Accept or Deny is final,
Pass goes on), then the namespaced NetworkPolicies if any selects the pod (final), then the
first matching Baseline rule, then the default allow. The node-local and self bypasses above
hold for the tiers too (the compiled chains sit where the v1 chains sit).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import tiers as tiers_mod
from .model import IPPeer, Peer, Policy, PortMatch, Rule, describe_peer, describe_port, describe_selector
from .world import Endpoint, World

if TYPE_CHECKING:  # a World's pods are the Plan's
    from ..plan.model import PodPlan

FLOW_PROTOCOLS = ("TCP", "UDP", "SCTP", "ICMP")

# DirectionVerdict.reason
NOT_A_POD = "not-a-pod"  # this end is not a pod: no policy applies
NOT_ISOLATED = "not-isolated"  # no policy selects the pod for this direction
ALLOWED = "allowed"  # isolated, and at least one rule allows the flow
NO_RULE = "no-rule"  # isolated, and no rule allows the flow
BYPASS = "bypass"  # never filtered (node-local or the pod itself)
TIER = "tier"  # an Admin or Baseline rule decided (DirectionVerdict.hit)

# DirectionVerdict.tier: who decided, in the hierarchy (only set when the world has tiers)
NETWORKPOLICY_TIER = "NetworkPolicy"
DEFAULT_TIER = "default"

# Verdict.bypass
SELF = "self"
NODE_LOCAL = "node-local"
NO_POD = "no-pod"


@dataclass(frozen=True)
class Flow:
    src: str  # a pod (ns/name or a unique name), a node or host name, or an IP
    dst: str
    port: int | None = None  # None for ICMP
    protocol: str = "TCP"

    def __post_init__(self) -> None:
        if self.protocol not in FLOW_PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(FLOW_PROTOCOLS)}, got {self.protocol!r}")
        if self.protocol == "ICMP":
            if self.port is not None:
                raise ValueError("an ICMP flow has no port")
        elif self.port is None or not 1 <= self.port <= 65535:
            raise ValueError(f"a {self.protocol} flow needs a port in [1, 65535], got {self.port!r}")

    def service(self) -> str:
        return "ICMP" if self.port is None else f"{self.protocol} port {self.port}"

    @classmethod
    def of(cls, src: str, dst: str, service: str) -> Flow:
        """From command-line words: `80`, `80/TCP`, `53/udp`, `7777/SCTP` or `icmp`."""
        text = service.strip()
        if text.upper() == "ICMP":
            return cls(src, dst, None, "ICMP")
        number, _, proto = text.partition("/")
        if not number.isdigit():
            raise ValueError(f"expected PORT[/PROTOCOL] or icmp, got {service!r}")
        return cls(src, dst, int(number), (proto or "TCP").upper())


@dataclass(frozen=True)
class Allow:
    """A rule that allows the flow: which policy, rule, peer and port."""

    policy: str  # namespace/name
    rule: str  # "spec.ingress[0]"
    peer: int | None  # index in from/to; None: the rule has no peers (everyone)
    port: int | None  # index in ports; None: the rule has no ports (everything)
    peer_text: str
    port_text: str

    @property
    def path(self) -> str:
        key = "from" if ".ingress[" in self.rule else "to"
        out = self.rule
        if self.peer is not None:
            out += f".{key}[{self.peer}]"
        if self.port is not None:
            out += f" + ports[{self.port}]"
        return out


@dataclass(frozen=True)
class Miss:
    """A rule of a selecting policy that does not allow the flow, and why."""

    policy: str
    rule: str  # "spec.ingress[0]", or "spec.ingress" for a policy with no rules
    reason: str


@dataclass(frozen=True)
class DirectionVerdict:
    direction: str  # "ingress" (checked on the destination) | "egress" (on the source)
    pod: str  # namespace/name of the pod concerned; "" if that end is not a pod
    allowed: bool
    reason: str  # NOT_A_POD | NOT_ISOLATED | ALLOWED | NO_RULE | BYPASS
    selecting: tuple[str, ...] = ()  # policies that select the pod for this direction
    allows: tuple[Allow, ...] = ()
    misses: tuple[Miss, ...] = ()
    tier: str = ""  # Admin | NetworkPolicy | Baseline | default; "" without tiers
    hit: tiers_mod.TierHit | None = None  # the Admin/Baseline rule that decided
    passed: tuple[tiers_mod.TierHit, ...] = ()  # Pass rules that handed the decision down

    @property
    def isolated(self) -> bool:
        return bool(self.selecting)

    def decision(self) -> str:
        """Who decided, in the hierarchy's words: `Admin cnp/deny-sensitive rule r: Deny`,
        `passed to NetworkPolicy: allowed by x/allow-ns-y`, `Baseline banp/default rule r: Deny`."""
        if not self.tier:
            return ""
        where = f"passed to {self.tier}" if self.passed else self.tier
        if self.hit is not None:
            return f"passed to {self.hit}" if self.passed else str(self.hit)
        if self.tier == NETWORKPOLICY_TIER:
            if self.allowed:
                return f"{where}: allowed by " + ", ".join(dict.fromkeys(a.policy for a in self.allows))
            return f"{where}: denied: isolated by {', '.join(self.selecting)} and no rule allows it"
        return ("passed: " if self.passed else "") + "no tier matches: default allow"


@dataclass(frozen=True)
class Verdict:
    flow: Flow
    src: Endpoint
    dst: Endpoint
    allowed: bool
    egress: DirectionVerdict
    ingress: DirectionVerdict
    bypass: str = ""  # SELF | NODE_LOCAL | NO_POD when policies cannot apply

    @property
    def deciding_policies(self) -> tuple[str, ...]:
        """Policies whose rules allowed the flow (allowed) or isolate a blocking end (blocked)."""
        if self.allowed:
            return tuple(dict.fromkeys(a.policy for d in (self.egress, self.ingress) for a in d.allows))
        return tuple(dict.fromkeys(p for d in (self.egress, self.ingress) if not d.allowed for p in d.selecting))


# -- the decision ------------------------------------------------------------------------------


def selecting_policies(world: World, pod: PodPlan, direction: str) -> tuple[Policy, ...]:
    return tuple(p for p in world.policies if p.affects(direction) and p.selects(pod.namespace, pod.labels))


def decide(flow: Flow, world: World) -> Verdict:
    src, dst = world.endpoint(flow.src), world.endpoint(flow.dst)
    return decide_endpoints(flow, src, dst, world)


def decide_endpoints(flow: Flow, src: Endpoint, dst: Endpoint, world: World) -> Verdict:
    bypass = ""
    if src.pod is not None and dst.pod is not None and src.pod.full_name == dst.pod.full_name:
        bypass = SELF
    elif dst.pod is not None and src.node and src.node == dst.pod.node:
        bypass = NODE_LOCAL
    elif src.pod is not None and dst.node and dst.node == src.pod.node:
        bypass = NODE_LOCAL
    elif src.pod is None and dst.pod is None:
        bypass = NO_POD
    if bypass:
        eg = DirectionVerdict("egress", src.pod.full_name if src.pod else "", True, BYPASS if src.pod else NOT_A_POD)
        ing = DirectionVerdict("ingress", dst.pod.full_name if dst.pod else "", True, BYPASS if dst.pod else NOT_A_POD)
        return Verdict(flow, src, dst, True, eg, ing, bypass)
    eg = _direction(world, "egress", src.pod, dst, flow, dst)
    ing = _direction(world, "ingress", dst.pod, src, flow, dst)
    return Verdict(flow, src, dst, eg.allowed and ing.allowed, eg, ing)


def _direction(
    world: World, direction: str, pod: PodPlan | None, other: Endpoint, flow: Flow, dst: Endpoint
) -> DirectionVerdict:
    if pod is None:
        return DirectionVerdict(direction, "", True, NOT_A_POD)
    if world.tiers:
        return _tiered(world, direction, pod, other, flow, dst)
    return _v1_direction(world, direction, pod, other, flow, dst)


def _tiered(world: World, direction: str, pod: PodPlan, other: Endpoint, flow: Flow, dst: Endpoint) -> DirectionVerdict:
    """Admin tier, then NetworkPolicy, then Baseline, then the default allow."""
    passed: list[tiers_mod.TierHit] = []
    for tier in (tiers_mod.ADMIN, NETWORKPOLICY_TIER, tiers_mod.BASELINE):
        if tier == NETWORKPOLICY_TIER:
            v1 = _v1_direction(world, direction, pod, other, flow, dst)
            if v1.reason != NOT_ISOLATED:  # v1 always decides for the pods it selects
                return dataclasses.replace(v1, tier=tier, passed=tuple(passed))
            continue
        hit = tiers_mod.first_hit(world, tier, direction, pod, other, flow.protocol, flow.port, dst)
        if hit is None:
            continue
        if hit.action == tiers_mod.PASS:
            passed.append(hit)
            continue
        return DirectionVerdict(
            direction,
            pod.full_name,
            hit.action == tiers_mod.ACCEPT,
            TIER,
            (hit.policy,),
            tier=tier,
            hit=hit,
            passed=tuple(passed),
        )
    return DirectionVerdict(direction, pod.full_name, True, NOT_ISOLATED, tier=DEFAULT_TIER, passed=tuple(passed))


def _v1_direction(
    world: World, direction: str, pod: PodPlan, other: Endpoint, flow: Flow, dst: Endpoint
) -> DirectionVerdict:
    selecting = selecting_policies(world, pod, direction)
    if not selecting:
        return DirectionVerdict(direction, pod.full_name, True, NOT_ISOLATED)
    allows: list[Allow] = []
    misses: list[Miss] = []
    for policy in selecting:
        rules = policy.rules(direction) or ()
        if not rules:
            misses.append(
                Miss(
                    policy.full_name,
                    f"spec.{direction}",
                    f"the policy has no {direction} rules: it allows no {direction} traffic",
                )
            )
        for rule in rules:
            peer = _peer_hit(world, rule, other)
            port = _port_hit(rule, flow, dst)
            if peer is not False and port is not False:
                allows.append(
                    Allow(
                        policy.full_name,
                        rule.path,
                        peer,
                        port,
                        _peer_text(rule, peer, direction),
                        _port_text(rule, port, dst),
                    )
                )
            else:
                misses.append(Miss(policy.full_name, rule.path, _miss_reason(rule, direction, peer, port, flow, dst)))
    names = tuple(p.full_name for p in selecting)
    return DirectionVerdict(
        direction, pod.full_name, bool(allows), ALLOWED if allows else NO_RULE, names, tuple(allows), tuple(misses)
    )


def peer_matches(world: World, peer: Peer, other: Endpoint) -> bool:
    if isinstance(peer, IPPeer):
        return peer.contains(ipaddress.ip_address(other.ip))
    if other.pod is None:
        return False
    pod = other.pod
    return peer.matches(pod.namespace, world.namespace_labels(pod.namespace), pod.labels)


def port_matches(port: PortMatch, flow: Flow, dst: Endpoint) -> bool:
    if port.protocol != flow.protocol or flow.port is None:
        return False
    if port.name:
        return dst.pod is not None and dst.pod.resolve(port.name, port.protocol) == flow.port
    if port.first is None:
        return True
    return port.first <= flow.port <= (port.last if port.last is not None else port.first)


def _peer_hit(world: World, rule: Rule, other: Endpoint) -> int | None | bool:
    """Index of the first matching peer, None if the rule has no peers, False if none matches."""
    if rule.peers is None:
        return None
    for i, peer in enumerate(rule.peers):
        if peer_matches(world, peer, other):
            return i
    return False


def _port_hit(rule: Rule, flow: Flow, dst: Endpoint) -> int | None | bool:
    if rule.ports is None:
        return None
    for i, port in enumerate(rule.ports):
        if port_matches(port, flow, dst):
            return i
    return False


def _peer_text(rule: Rule, hit: int | None | bool, direction: str) -> str:
    if hit is None or hit is False or rule.peers is None:
        return "from anywhere" if direction == "ingress" else "to anywhere"
    return ("from " if direction == "ingress" else "to ") + describe_peer(rule.peers[hit])


def _port_text(rule: Rule, hit: int | None | bool, dst: Endpoint) -> str:
    if hit is None or hit is False or rule.ports is None:
        return "on every port and protocol"
    port = rule.ports[hit]
    text = "on " + describe_port(port)
    if port.name and dst.pod is not None:
        text += f" (= {port.protocol} {dst.pod.resolve(port.name, port.protocol)} on {dst.pod.full_name})"
    return text


def _miss_reason(
    rule: Rule, direction: str, peer: int | None | bool, port: int | None | bool, flow: Flow, dst: Endpoint
) -> str:
    reasons = []
    if peer is False:
        who = "the source" if direction == "ingress" else "the destination"
        reasons.append(_none_of(who, rule.peer_key, [describe_peer(p) for p in rule.peers or ()]))
    if port is False:
        text = _none_of(flow.service(), "ports", [describe_port(p) for p in rule.ports or ()])
        for p in rule.ports or ():
            if not p.name or p.protocol != flow.protocol:
                continue
            if dst.pod is None:
                text += " (a port name resolves on pods only; the destination is not a pod)"
            else:
                num = dst.pod.resolve(p.name, p.protocol)
                text += (
                    f" ({p.name!r} is {p.protocol} {num} on {dst.pod.full_name})"
                    if num is not None
                    else f" ({dst.pod.full_name} has no {p.protocol} port named {p.name!r})"
                )
        reasons.append(text)
    return "; and ".join(reasons)


def _none_of(subject: str, key: str, items: list[str]) -> str:
    if len(items) == 1:
        return f"{subject} does not match {key}[0] ({items[0]})"
    return f"{subject} matches none of " + ", ".join(f"{key}[{i}] ({t})" for i, t in enumerate(items))


# -- tables ------------------------------------------------------------------------------------


def truth_table(
    world: World, sources: Iterable[str], destinations: Iterable[str], ports: Iterable[int], protocols: Iterable[str]
) -> dict[tuple[str, str, int | None, str], bool]:
    """{(source, destination, port, protocol): allowed} for every combination.

    ICMP, if asked for, appears once per pair with port None. Endpoints are resolved once.
    """
    world_sources = [(s, world.endpoint(s)) for s in sources]
    world_dests = [(d, world.endpoint(d)) for d in destinations]
    ports, protocols = list(ports), list(protocols)
    services: list[tuple[int | None, str]] = [(None, "ICMP")] if "ICMP" in protocols else []
    services = [(port, proto) for proto in protocols if proto != "ICMP" for port in ports] + services
    table: dict[tuple[str, str, int | None, str], bool] = {}
    for s, src in world_sources:
        for d, dst in world_dests:
            for port, proto in services:
                flow = Flow(s, d, port, proto)
                table[(s, d, port, proto)] = decide_endpoints(flow, src, dst, world).allowed
    return table


def selector_text(policy: Policy) -> str:
    text = describe_selector(policy.selector)
    return f"pods {text}" if text else "every pod"
