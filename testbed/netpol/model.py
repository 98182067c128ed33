"""The policy IR: NetworkPolicies normalised for the oracle, the compiler and explanations; pure.

A `Policy` is a decoded NetworkPolicy (spec/netpol.py) with the API's defaults made explicit:
a direction the policy does not affect is None (its rules, if written, are ignored and
remembered in `ignored`); a peer is either a `PodPeer` (namespace by name or by selector,
pods by selector or all) or an `IPPeer` (cidr minus except); a port is a `PortMatch` (a
protocol with every port, a range first..last, or a name resolved on the destination pod);
`peers`/`ports` of None mean "every peer"/"every port and protocol" (an absent or empty list).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ..spec.netpol import NetworkPolicySpec, PeerSpec, PortSpec, RuleSpec
from ..spec.selectors import LabelSelector

DIRECTIONS = ("ingress", "egress")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class PodPeer:
    """Pods by labels in namespaces: `namespace` set means the policy's own namespace only
    (no namespaceSelector); otherwise `namespace_selector` picks namespaces by their labels.
    `pod_selector` None means every pod of those namespaces."""

    namespace: str | None
    namespace_selector: LabelSelector | None
    pod_selector: LabelSelector | None

    def matches(self, namespace: str, namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str]) -> bool:
        if self.namespace is not None:
            if namespace != self.namespace:
                return False
        elif self.namespace_selector is None or not self.namespace_selector.matches(namespace_labels):
            return False
        return self.pod_selector is None or self.pod_selector.matches(pod_labels)


@dataclass(frozen=True)
class IPPeer:
    """An ipBlock: addresses in `cidr` but in none of `excepts`."""

    cidr: IPNetwork
    excepts: tuple[IPNetwork, ...] = ()

    def contains(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if ip.version != self.cidr.version or ip not in self.cidr:
            return False
        return not any(ip in e for e in self.excepts)

    @cached_property
    def ipv4_networks(self) -> tuple[ipaddress.IPv4Network, ...]:
        """cidr minus excepts as disjoint IPv4 prefixes (what the compiler puts in a set)."""
        if self.cidr.version != 4:
            return ()
        return self._disjoint()  # type: ignore[return-value]

    @cached_property
    def ipv6_networks(self) -> tuple[ipaddress.IPv6Network, ...]:
        """The same for IPv6 (the IPv6 table of a dual-stack cluster, issue 15)."""
        if self.cidr.version != 6:
            return ()
        return self._disjoint()  # type: ignore[return-value]

    def networks(self, version: int) -> tuple[IPNetwork, ...]:
        return self.ipv4_networks if version == 4 else self.ipv6_networks

    def _disjoint(self) -> tuple[IPNetwork, ...]:
        remaining = [self.cidr]
        for ex in self.excepts:
            nxt: list[Any] = []
            for net in remaining:
                # One IP version throughout: spec/netpol.py refuses an except of another version.
                if ex.subnet_of(net):  # type: ignore[arg-type]
                    nxt.extend(net.address_exclude(ex))  # type: ignore[arg-type]
                elif not net.subnet_of(ex):  # type: ignore[arg-type]
                    nxt.append(net)
            remaining = nxt
        return tuple(ipaddress.collapse_addresses(remaining))  # type: ignore[type-var]


Peer = PodPeer | IPPeer


@dataclass(frozen=True)
class PortMatch:
    protocol: str
    first: int | None = None  # None (and no name): every port of the protocol
    last: int | None = None
    name: str = ""  # a named port, resolved on the destination pod's containerPorts

    @property
    def every_port(self) -> bool:
        return self.first is None and not self.name


@dataclass(frozen=True)
class Rule:
    path: str  # "spec.ingress[0]", for messages
    peers: tuple[Peer, ...] | None  # None: every source (ingress) / destination (egress)
    ports: tuple[PortMatch, ...] | None  # None: every port and protocol

    @property
    def peer_key(self) -> str:
        return "from" if ".ingress[" in self.path else "to"


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    selector: LabelSelector
    ingress: tuple[Rule, ...] | None  # None: the policy does not isolate for ingress
    egress: tuple[Rule, ...] | None
    types_given: bool = True
    ignored: tuple[str, ...] = ()  # directions whose written rules policyTypes leaves out
    file: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.name}"

    def affects(self, direction: str) -> bool:
        return self.rules(direction) is not None

    def rules(self, direction: str) -> tuple[Rule, ...] | None:
        if direction == "ingress":
            return self.ingress
        if direction == "egress":
            return self.egress
        raise ValueError(f"unknown direction {direction!r}")

    def selects(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """A policy selects pods of its own namespace only (podSelector {} = all of them)."""
        return namespace == self.namespace and self.selector.matches(labels)

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(d.capitalize() for d in DIRECTIONS if self.affects(d))


# -- from the decoded spec ---------------------------------------------------------------


def policy_from_spec(spec: NetworkPolicySpec) -> Policy:
    ns = spec.ref.namespace

    def rules(items: tuple[RuleSpec, ...], direction: str) -> tuple[Rule, ...]:
        return tuple(
            Rule(
                f"spec.{direction}[{i}]",
                tuple(_peer(p, ns) for p in r.peers) or None,
                tuple(_port(p) for p in r.ports) or None,
            )
            for i, r in enumerate(items)
        )

    ingress = rules(spec.ingress, "ingress") if "Ingress" in spec.policy_types else None
    egress = rules(spec.egress, "egress") if "Egress" in spec.policy_types else None
    ignored = tuple(
        d
        for d, written, kept in (("ingress", spec.ingress, ingress), ("egress", spec.egress, egress))
        if written and kept is None
    )
    return Policy(
        ns, spec.ref.name, spec.pod_selector, ingress, egress, spec.policy_types_given, ignored, spec.ref.file
    )


def policies_from(items: Iterable[NetworkPolicySpec | Policy]) -> tuple[Policy, ...]:
    """IR policies, sorted by namespace/name (the order the compiler numbers them in)."""
    out = [p if isinstance(p, Policy) else policy_from_spec(p) for p in items]
    return tuple(sorted(out, key=lambda p: (p.namespace, p.name)))


def _peer(peer: PeerSpec, namespace: str) -> Peer:
    if peer.ip_block is not None:
        return IPPeer(
            ipaddress.ip_network(peer.ip_block.cidr, strict=False),
            tuple(ipaddress.ip_network(e, strict=False) for e in peer.ip_block.except_),
        )
    if peer.namespace_selector is None:
        return PodPeer(namespace, None, peer.pod_selector)
    return PodPeer(None, peer.namespace_selector, peer.pod_selector)


def _port(port: PortSpec) -> PortMatch:
    if port.port is None:
        return PortMatch(port.protocol)
    if isinstance(port.port, str):
        return PortMatch(port.protocol, name=port.port)
    return PortMatch(port.protocol, port.port, port.end_port if port.end_port is not None else port.port)


# -- words ---------------------------------------------------------------------------------


def describe_selector(selector: LabelSelector) -> str:
    if selector.is_empty():
        return ""
    if not selector.match_expressions:
        return "labelled " + ", ".join(f"{k}={v}" for k, v in selector.match_labels)
    return f"whose labels match `{selector}`"


def describe_peer(peer: Peer) -> str:
    if isinstance(peer, IPPeer):
        text = f"addresses in {peer.cidr}"
        if peer.excepts:
            text += " except " + ", ".join(str(e) for e in peer.excepts)
        return text
    pods = (
        "every pod"
        if peer.pod_selector is None or peer.pod_selector.is_empty()
        else f"pods {describe_selector(peer.pod_selector)}"
    )
    if peer.namespace is not None:
        where = f"in namespace {peer.namespace}"
    elif peer.namespace_selector is None or peer.namespace_selector.is_empty():
        where = "in every namespace"
    else:
        where = f"in namespaces {describe_selector(peer.namespace_selector)}"
    return f"{pods} {where}"


def describe_port(port: PortMatch) -> str:
    if port.name:
        return f"{port.protocol} port named {port.name!r}"
    if port.first is None:
        return f"every {port.protocol} port"
    if port.first == port.last:
        return f"{port.protocol} port {port.first}"
    return f"{port.protocol} ports {port.first}-{port.last}"


def describe_peers(rule: Rule, direction: str) -> str:
    if rule.peers is None:
        return "from anywhere" if direction == "ingress" else "to anywhere"
    word = "from" if direction == "ingress" else "to"
    return f"{word} " + " or ".join(describe_peer(p) for p in rule.peers)


def describe_ports(rule: Rule) -> str:
    if rule.ports is None:
        return "on every port and protocol"
    return "on " + " or ".join(describe_port(p) for p in rule.ports)
