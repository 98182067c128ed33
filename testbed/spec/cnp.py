"""Strict decoding of the cluster administrator's policies (Network Policy API); pure.

Registered in workloads.EXTENSIONS beside NetworkPolicy: the manifest loader calls one of
`decode_cnp`, `decode_anp`, `decode_banp` for

- `ClusterNetworkPolicy` (policy.networking.k8s.io/v1alpha2): tier Admin or Baseline, priority
  0..1000, a subject, up to 25 ingress and 25 egress rules with actions Accept, Deny, Pass;
- `AdminNetworkPolicy` (v1alpha1): the Admin tier; priority 0..1000; up to 100 rules; actions
  Allow, Deny, Pass;
- `BaselineAdminNetworkPolicy` (v1alpha1): the Baseline tier; a singleton named `default`;
  actions Allow and Deny only.

and collects the results in Manifests.cluster_policies. Validation is what the CRDs of
kubernetes-sigs/network-policy-api say (OpenAPI schema plus CEL rules): every problem is one
line naming file, object and field, worded as the API server words it ("Unsupported value",
"Too many", "Invalid value", "Required value", or the CEL rule's own message).

Choices where the CRDs are silent (written down here and in README.md):

- Pass in the Baseline tier of a ClusterNetworkPolicy is accepted, as the v1alpha2 CRD does
  (NPEP-285 allows it "to make the API more uniform"): it skips the remaining Baseline rules,
  which leaves the default allow. BaselineAdminNetworkPolicy refuses Pass (its enum).
- domainNames peers (experimental) are decoded but refused as not emulated: the testbed has
  no DNS-aware dataplane, and silently ignoring an Accept rule would be a wrong verdict.
- v1alpha1 port ranges have no CEL rule; a range with start > end is accepted as the API
  server accepts it, and matches no port.

The result is plain data (frozen dataclasses); testbed/netpol/tiers.py evaluates it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import excerpt
from .decode import Doc
from .labels import decode_selector
from .model import ObjectRef
from .selectors import LabelSelector

GROUP = "policy.networking.k8s.io"
CNP_API = f"{GROUP}/v1alpha2"
ANP_API = f"{GROUP}/v1alpha1"
ADMIN, BASELINE = "Admin", "Baseline"
ACCEPT, DENY, PASS = "Accept", "Deny", "Pass"
PRIORITY_MAX = 1000
MAX_CIDR_LENGTH = 43
MAX_RULE_NAME = 100


@dataclass(frozen=True)
class NamespacedPods:
    """pods: {namespaceSelector, podSelector} — pods matching both (empty = all)."""

    namespace_selector: LabelSelector
    pod_selector: LabelSelector


@dataclass(frozen=True)
class TierPeer:
    """Exactly one of: namespaces, pods, nodes (egress), networks (egress)."""

    namespaces: LabelSelector | None = None
    pods: NamespacedPods | None = None
    nodes: LabelSelector | None = None
    networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class TierPort:
    """A protocol with a port or range, or a destination named port (any protocol)."""

    protocol: str | None  # None: a named port, whose protocol is the container port's
    first: int | None = None  # None with no name: every port of the protocol
    last: int | None = None
    name: str = ""


@dataclass(frozen=True)
class TierRule:
    index: int
    name: str  # as written ("" when not named)
    action: str  # Accept | Deny | Pass (v1alpha1's Allow is Accept)
    peers: tuple[TierPeer, ...]
    ports: tuple[TierPort, ...] | None  # None: every port and protocol


@dataclass(frozen=True)
class ClusterPolicySpec:
    """One ClusterNetworkPolicy, AdminNetworkPolicy or BaselineAdminNetworkPolicy."""

    ref: ObjectRef
    api_version: str
    tier: str  # Admin | Baseline
    priority: int  # BaselineAdminNetworkPolicy: PRIORITY_MAX + 1 (after every CNP)
    subject_namespaces: LabelSelector | None
    subject_pods: NamespacedPods | None
    ingress: tuple[TierRule, ...] = ()
    egress: tuple[TierRule, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def short_kind(self) -> str:
        return {"ClusterNetworkPolicy": "cnp", "AdminNetworkPolicy": "anp", "BaselineAdminNetworkPolicy": "banp"}[
            self.ref.kind
        ]

    @property
    def full_name(self) -> str:
        """`cnp/deny-sensitive`, as kubectl's short names spell it."""
        return f"{self.short_kind}/{self.ref.name}"


@dataclass(frozen=True)
class _Flavour:
    """What differs between the three kinds."""

    max_items: int  # rules, peers and ports per list
    actions: tuple[str, ...]
    v1alpha2: bool
    domain_names: bool  # egress peers may have domainNames


_CNP = _Flavour(25, (ACCEPT, DENY, PASS), True, True)
_ANP = _Flavour(100, ("Allow", DENY, PASS), False, True)
_BANP = _Flavour(100, ("Allow", DENY), False, False)


# -- the API server's words -------------------------------------------------------------------


def _unsupported(doc: Doc, value: Any, allowed: tuple[str, ...], key: str | None = None) -> None:
    doc.error(f"Unsupported value: {excerpt(value)}: supported values: " + ", ".join(f'"{a}"' for a in allowed), key)


def _too_many(doc: Doc, n: int, most: int, key: str | None = None) -> None:
    doc.error(f"Too many: {n}: must have at most {most} items", key)


def _list(doc: Doc, key: str, flavour_max: int, required: bool = False, min_items: int = 0) -> list[Doc] | None:
    """The elements of a list field, bounded as the CRD bounds it; None when absent or bad."""
    node = doc.field(key)
    if not node.present():
        if required:
            doc.error("Required value", key)
        return None
    if not isinstance(node.value, list):
        node.error(f"Invalid value: {excerpt(node.value)}: must be of type array")
        return None
    if len(node.value) > flavour_max:
        _too_many(node, len(node.value), flavour_max)
        return None
    if len(node.value) < min_items:
        node.error(f"Invalid value: {len(node.value)}: should have at least {min_items} items")
        return None
    return [node.child(i, v) for i, v in enumerate(node.value)]


def _one_of(doc: Doc, keys: tuple[str, ...]) -> str | None:
    """minProperties=1, maxProperties=1: the one key set, or None (reported)."""
    given = [k for k in keys if isinstance(doc.value, dict) and k in doc.value]
    if len(given) > 1:
        doc.error(f"Too many: {len(given)}: must have at most 1 items (set only one of {', '.join(given)})")
        return None
    if not given:
        if isinstance(doc.value, dict) and doc.value:
            return None  # only unknown fields: check_keys said so already
        doc.error(f"Invalid value: 0: should have at least 1 properties (one of {', '.join(keys)})")
        return None
    return given[0]


def _int(doc: Doc, key: str, lo: int, hi: int, required: bool = True) -> int | None:
    node = doc.field(key)
    if not node.present():
        if required:
            doc.error("Required value", key)
        return None
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int):
        node.error(f"Invalid value: {excerpt(value)}: must be of type integer")
        return None
    if value < lo:
        node.error(f"Invalid value: {value}: should be greater than or equal to {lo}")
        return None
    if value > hi:
        node.error(f"Invalid value: {value}: should be less than or equal to {hi}")
        return None
    return value


# -- the three kinds ---------------------------------------------------------------------------


def decode_cnp(
    doc: Doc, ref: ObjectRef, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> ClusterPolicySpec | None:
    """A ClusterNetworkPolicy (v1alpha2); None when it has problems (reported on `doc`)."""
    return _decode(doc, ref, labels, _CNP)


def decode_anp(
    doc: Doc, ref: ObjectRef, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> ClusterPolicySpec | None:
    """An AdminNetworkPolicy (v1alpha1): the Admin tier."""
    return _decode(doc, ref, labels, _ANP)


def decode_banp(
    doc: Doc, ref: ObjectRef, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> ClusterPolicySpec | None:
    """A BaselineAdminNetworkPolicy (v1alpha1): the Baseline tier, named `default` only."""
    if ref.name != "default":
        doc.error(
            'Invalid value: "object": Only one baseline admin network policy with '
            'metadata.name="default" can be created in the cluster',
            "metadata.name",
        )
    return _decode(doc, ref, labels, _BANP)


def _decode(doc: Doc, ref: ObjectRef, labels: Mapping[str, str], flavour: _Flavour) -> ClusterPolicySpec | None:
    before = len(doc.problems.items)
    doc.check_keys(("apiVersion", "kind", "metadata", "spec"), ("status",))
    spec = doc.mapping("spec", required=True)
    if spec is None:
        return None
    tier: str | None
    priority: int | None
    if flavour is _BANP:
        spec.check_keys(("subject", "ingress", "egress"))
        tier, priority = BASELINE, PRIORITY_MAX + 1
    elif flavour is _ANP:
        spec.check_keys(("priority", "subject", "ingress", "egress"))
        tier, priority = ADMIN, _int(spec, "priority", 0, PRIORITY_MAX)
    else:
        spec.check_keys(("tier", "priority", "subject", "ingress", "egress"))
        tier = spec.field("tier").value if spec.field("tier").present() else None
        if tier is None:
            spec.error("Required value", "tier")
        elif tier not in (ADMIN, BASELINE):
            _unsupported(spec, tier, (ADMIN, BASELINE), "tier")
        priority = _int(spec, "priority", 0, PRIORITY_MAX)
    subject = spec.mapping("subject", required=True)
    namespaces = pods = None
    if subject is not None:
        subject.check_keys(("namespaces", "pods"))
        which = _one_of(subject, ("namespaces", "pods"))
        if which == "namespaces":
            namespaces = decode_selector(subject.mapping("namespaces"))
        elif which == "pods":
            pods = _namespaced_pods(subject.mapping("pods"))
    ingress = tuple(
        r
        for r in (
            _rule(d, i, "ingress", flavour) for i, d in enumerate(_list(spec, "ingress", _max_rules(flavour)) or ())
        )
        if r
    )
    egress = tuple(
        r
        for r in (
            _rule(d, i, "egress", flavour) for i, d in enumerate(_list(spec, "egress", _max_rules(flavour)) or ())
        )
        if r
    )
    if len(doc.problems.items) != before or tier is None or priority is None or (namespaces is None and pods is None):
        return None
    return ClusterPolicySpec(
        ref, doc.value.get("apiVersion", ""), tier, priority, namespaces, pods, ingress, egress, dict(labels)
    )


def _max_rules(flavour: _Flavour) -> int:
    return flavour.max_items


def _namespaced_pods(doc: Doc | None) -> NamespacedPods | None:
    if doc is None:
        return None
    doc.check_keys(("namespaceSelector", "podSelector"))
    ns = decode_selector(doc.mapping("namespaceSelector", required=True))
    pods = decode_selector(doc.mapping("podSelector", required=True))
    if ns is None or pods is None:
        return None
    return NamespacedPods(ns, pods)


def _rule(doc: Doc, index: int, direction: str, flavour: _Flavour) -> TierRule | None:
    if not doc.is_mapping():
        return None
    peers_key = "from" if direction == "ingress" else "to"
    ports_key = "protocols" if flavour.v1alpha2 else "ports"
    doc.check_keys(("name", "action", peers_key, ports_key))
    before = len(doc.problems.items)
    name = doc.str("name", default="") or ""
    if len(name) > MAX_RULE_NAME:
        doc.error(f"Too long: may not be more than {MAX_RULE_NAME} bytes", "name")
    action = doc.field("action").value if doc.field("action").present() else None
    if action is None:
        doc.error("Required value", "action")
    elif action not in flavour.actions:
        _unsupported(doc, action, flavour.actions, "action")
    peers = tuple(
        p
        for p in (
            _peer(d, direction, flavour)
            for d in _list(doc, peers_key, flavour.max_items, required=True, min_items=1) or ()
        )
        if p is not None
    )
    port_docs = _list(doc, ports_key, flavour.max_items, min_items=1)
    ports = (
        None
        if port_docs is None
        else tuple(p for p in ((_protocol(d) if flavour.v1alpha2 else _port(d)) for d in port_docs) if p is not None)
    )
    if (
        direction == "egress"
        and ports
        and any(p.name for p in ports)
        and any(p.networks or p.nodes is not None for p in peers)
    ):
        # The CRD's CEL rule on an egress rule (XValidation), word for word.
        extra = "/domainNames" if flavour.domain_names else ""
        doc.error(
            f'Invalid value: "object": networks/nodes{extra} peer cannot be set with namedPorts '
            f"since there are no namedPorts for networks/nodes{extra}"
        )
    if len(doc.problems.items) != before or not isinstance(action, str):
        return None
    return TierRule(index, name, ACCEPT if action == "Allow" else action, peers, ports)


def _peer(doc: Doc, direction: str, flavour: _Flavour) -> TierPeer | None:
    if not doc.is_mapping():
        return None
    keys: tuple[str, ...] = ("namespaces", "pods")
    if direction == "egress":
        keys += ("nodes", "networks") + (("domainNames",) if flavour.domain_names else ())
    doc.check_keys(keys)
    which = _one_of(doc, keys)
    if which == "namespaces":
        sel = decode_selector(doc.mapping("namespaces"))
        return TierPeer(namespaces=sel) if sel is not None else None
    if which == "pods":
        pods = _namespaced_pods(doc.mapping("pods"))
        return TierPeer(pods=pods) if pods is not None else None
    if which == "nodes":
        sel = decode_selector(doc.mapping("nodes"))
        return TierPeer(nodes=sel) if sel is not None else None
    if which == "networks":
        nets = []
        items = _list(doc, "networks", 25, min_items=1) or ()
        for ndoc in items:
            value = ndoc.value
            if not isinstance(value, str):
                ndoc.error(f"Invalid value: {excerpt(value)}: must be of type string")
            elif len(value) > MAX_CIDR_LENGTH:
                ndoc.error(f"Too long: may not be more than {MAX_CIDR_LENGTH} bytes")
            elif not _is_cidr(value):
                ndoc.error(f"Invalid value: {excerpt(value)}: Invalid CIDR format provided")
            elif value in nets:
                ndoc.error(f"Duplicate value: {excerpt(value)}")  # listType=set
            else:
                nets.append(value)
        return TierPeer(networks=tuple(nets)) if nets and len(nets) == len(items) else None
    if which == "domainNames":
        doc.error("domainNames peers are not emulated by this version (no DNS-aware dataplane)", "domainNames")
    return None


def _is_cidr(value: str) -> bool:
    """CEL's isCIDR(): an address, a slash and a prefix length (host bits may be set)."""
    if "/" not in value:
        return False
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _port_number(doc: Doc) -> tuple[int, int] | None:
    """v1alpha2 Port: exactly one of number, range {start < end}."""
    if not doc.is_mapping():
        return None
    doc.check_keys(("number", "range"))
    which = _one_of(doc, ("number", "range"))
    if which == "number":
        n = _int(doc, "number", 1, 65535)
        return (n, n) if n is not None else None
    if which == "range":
        rdoc = doc.mapping("range")
        if rdoc is None:
            return None
        rdoc.check_keys(("start", "end"))
        start, end = _int(rdoc, "start", 1, 65535), _int(rdoc, "end", 1, 65535)
        if start is None or end is None:
            return None
        if not start < end:
            rdoc.error('Invalid value: "object": Start port must be less than End port')
            return None
        return start, end
    return None


def _protocol(doc: Doc) -> TierPort | None:
    """v1alpha2 ClusterNetworkPolicyProtocol: one of tcp, udp, sctp, destinationNamedPort."""
    if not doc.is_mapping():
        return None
    keys = ("tcp", "udp", "sctp", "destinationNamedPort")
    doc.check_keys(keys)
    which = _one_of(doc, keys)
    if which is None:
        return None
    if which == "destinationNamedPort":
        name = doc.str("destinationNamedPort", required=True)
        return TierPort(None, name=name) if name else None
    pdoc = doc.mapping(which)
    if pdoc is None:
        return None
    pdoc.check_keys(("destinationPort",))
    if not pdoc.value:
        pdoc.error("Invalid value: 0: should have at least 1 properties")
        return None
    dport = pdoc.mapping("destinationPort")
    rng = _port_number(dport) if dport is not None else None
    if rng is None:
        return None
    return TierPort(which.upper(), rng[0], rng[1])


def _port(doc: Doc) -> TierPort | None:
    """v1alpha1 AdminNetworkPolicyPort: one of portNumber, namedPort, portRange."""
    if not doc.is_mapping():
        return None
    doc.check_keys(("portNumber", "namedPort", "portRange"))
    which = _one_of(doc, ("portNumber", "namedPort", "portRange"))
    if which == "namedPort":
        name = doc.str("namedPort", required=True)
        return TierPort(None, name=name) if name else None
    if which is None:
        return None
    pdoc = doc.mapping(which)
    if pdoc is None:
        return None
    if which == "portNumber":
        pdoc.check_keys(("protocol", "port"))
        port = _int(pdoc, "port", 1, 65535)
        first = last = port
    else:
        pdoc.check_keys(("protocol", "start", "end"))
        first, last = _int(pdoc, "start", 1, 65535), _int(pdoc, "end", 1, 65535)
    protocol = pdoc.field("protocol").value if pdoc.field("protocol").present() else "TCP"
    if protocol not in ("TCP", "UDP", "SCTP"):
        _unsupported(pdoc, protocol, ("TCP", "UDP", "SCTP"), "protocol")
        return None
    if first is None or last is None:
        return None
    return TierPort(protocol, first, last)
