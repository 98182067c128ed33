"""Strict decoding of networking.k8s.io/v1 NetworkPolicy objects; pure.

Registered in workloads.EXTENSIONS: the manifest loader calls `decode_policy` for every
`kind: NetworkPolicy` and collects the results in Manifests.policies. Validation follows the
API server (k8s.io/kubernetes pkg/apis/networking/validation): podSelector is required;
policyTypes are Ingress and/or Egress and, when absent, default to Ingress plus Egress if
the policy has egress rules; a peer names at least one of podSelector, namespaceSelector,
ipBlock, and an ipBlock stands alone; an ipBlock's `except` entries are strict subsets of its
`cidr`; a port is a number or an IANA port name, protocol TCP (default), UDP or SCTP, and
endPort needs a numeric port and is >= port. Every problem names file, object and field.

The result is plain data (frozen dataclasses); testbed/netpol turns it into its policy IR.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from .decode import Doc
from .labels import decode_selector
from .model import PROTOCOLS, Named, ObjectRef
from .names import port_name_error
from .selectors import LabelSelector

POLICY_TYPES = ("Ingress", "Egress")


@dataclass(frozen=True)
class IPBlockSpec:
    cidr: str  # as written (host bits allowed, as the API server allows)
    except_: tuple[str, ...] = ()


@dataclass(frozen=True)
class PeerSpec:
    """A NetworkPolicyPeer: selectors (ANDed when both are given) or an ipBlock."""

    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlockSpec | None = None


@dataclass(frozen=True)
class PortSpec:
    protocol: str = "TCP"
    port: int | str | None = None  # a number, a container port name, or None (every port)
    end_port: int | None = None


@dataclass(frozen=True)
class RuleSpec:
    """An ingress rule (`from`) or an egress rule (`to`); empty peers/ports mean all."""

    peers: tuple[PeerSpec, ...] = ()
    ports: tuple[PortSpec, ...] = ()


@dataclass(frozen=True)
class NetworkPolicySpec(Named):
    ref: ObjectRef
    pod_selector: LabelSelector
    policy_types: tuple[str, ...]  # after defaulting (never empty)
    ingress: tuple[RuleSpec, ...] = ()
    egress: tuple[RuleSpec, ...] = ()
    policy_types_given: bool = False  # False: inferred as the API server defaults them
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return self.key


def decode_policy(
    doc: Doc, ref: ObjectRef, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> NetworkPolicySpec | None:
    """Decode one NetworkPolicy object (metadata already checked by the loader).

    Returns None when the object has problems (all of them reported on `doc`).
    """
    before = len(doc.problems.items)
    doc.check_keys(("apiVersion", "kind", "metadata", "spec"), ("status",))
    spec = doc.mapping("spec", required=True)
    if spec is None:
        return None
    spec.check_keys(("podSelector", "policyTypes", "ingress", "egress"))
    pod_selector = decode_selector(spec.mapping("podSelector", required=True))
    ingress = tuple(_decode_rule(r, "from") for r in spec.items("ingress") if r.is_mapping())
    egress = tuple(_decode_rule(r, "to") for r in spec.items("egress") if r.is_mapping())
    given = spec.field("policyTypes").present()
    types: list[str] = []
    tdocs = list(spec.items("policyTypes"))
    if len(tdocs) > len(POLICY_TYPES):
        spec.error(f"may not specify more than {len(POLICY_TYPES)} policyTypes", "policyTypes")
    else:
        for tdoc in tdocs:
            if not isinstance(tdoc.value, str) or tdoc.value not in POLICY_TYPES:
                tdoc.error(f"must be Ingress or Egress, got {tdoc.value!r}")
            elif tdoc.value not in types:  # the API server accepts a repeated type; it means the same
                types.append(tdoc.value)
    if not types:
        # SetDefaults_NetworkPolicy: an absent or empty list means Ingress, plus Egress when the
        # policy has at least one egress rule (`egress: []` does not count).
        given = False
        types = ["Ingress"] + (["Egress"] if egress else [])
    if len(doc.problems.items) != before or pod_selector is None:
        return None
    order = {t: i for i, t in enumerate(POLICY_TYPES)}
    return NetworkPolicySpec(
        ref=ref,
        pod_selector=pod_selector,
        policy_types=tuple(sorted(types, key=order.__getitem__)),
        ingress=ingress,
        egress=egress,
        policy_types_given=given,
        labels=dict(labels),
    )


def _decode_rule(rdoc: Doc, peers_key: str) -> RuleSpec:
    rdoc.check_keys((peers_key, "ports"))
    peers = tuple(p for p in (_decode_peer(d) for d in rdoc.items(peers_key) if d.is_mapping()) if p is not None)
    ports = tuple(p for p in (_decode_port(d) for d in rdoc.items("ports") if d.is_mapping()) if p is not None)
    return RuleSpec(peers, ports)


def _decode_peer(pdoc: Doc) -> PeerSpec | None:
    pdoc.check_keys(("podSelector", "namespaceSelector", "ipBlock"))
    pods = decode_selector(pdoc.mapping("podSelector"))
    namespaces = decode_selector(pdoc.mapping("namespaceSelector"))
    bdoc = pdoc.mapping("ipBlock")
    block = _decode_ip_block(bdoc) if bdoc is not None else None
    given = [k for k in ("podSelector", "namespaceSelector", "ipBlock") if pdoc.field(k).present()]
    if not given:
        pdoc.error("must specify a peer: podSelector, namespaceSelector or ipBlock")
        return None
    if "ipBlock" in given and len(given) > 1:
        pdoc.error(
            "may not specify both ipBlock and another peer type "
            f"({' and '.join(k for k in given if k != 'ipBlock')}); use separate peers"
        )
        return None
    return PeerSpec(pods, namespaces, block)


def _parse_cidr(doc: Doc, key: str | int | None, value: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if not isinstance(value, str):
        doc.error(f"expected a CIDR string such as 10.0.0.0/8, got {value!r}", key)
        return None
    if "/" not in value:
        doc.error(f"{value!r} is not a CIDR: the prefix length is missing (e.g. {value}/32)", key)
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        doc.error(f"{value!r} is not a valid CIDR", key)
        return None


def _decode_ip_block(bdoc: Doc) -> IPBlockSpec | None:
    bdoc.check_keys(("cidr", "except"))
    raw = bdoc.str("cidr", required=True)
    cidr = _parse_cidr(bdoc, "cidr", raw) if raw is not None else None
    excepts: list[str] = []
    for edoc in bdoc.items("except"):
        net = _parse_cidr(edoc, None, edoc.value)
        if net is None:
            continue
        if cidr is not None and (
            net.version != cidr.version
            or not net.subnet_of(cidr)  # type: ignore[arg-type]
            or net.prefixlen <= cidr.prefixlen
        ):
            edoc.error(f"{edoc.value} must be a strict subset of cidr {raw}")
            continue
        excepts.append(edoc.value)
    if cidr is None:
        return None
    return IPBlockSpec(raw, tuple(excepts))


def _decode_port(pdoc: Doc) -> PortSpec | None:
    pdoc.check_keys(("port", "protocol", "endPort"))
    ok = True
    protocol = pdoc.str("protocol", default="TCP") or "TCP"
    if protocol not in PROTOCOLS:
        pdoc.error(f"must be one of {', '.join(PROTOCOLS)}, got {protocol!r}", "protocol")
        ok = False
    pnode = pdoc.field("port")
    port: int | str | None = None
    if pnode.present():
        value = pnode.value
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            pnode.error(f"expected a port number or a port name, got {value!r}")
            ok = False
        elif isinstance(value, int):
            if not 1 <= value <= 65535:
                pnode.error(f"{value} is out of range [1, 65535]")
                ok = False
            port = value
        else:
            err = port_name_error(value)
            if err:
                pnode.error(err + (" (write a number without quotes for a numeric port)" if value.isdigit() else ""))
                ok = False
            port = value
    end_port = None
    if pdoc.field("endPort").present():
        end_port = pdoc.int("endPort", minimum=1, maximum=65535)
        if end_port is None:
            ok = False
        elif port is None and not pnode.present():
            pdoc.error("may not be specified when `port` is not specified", "endPort")
            ok = False
        elif isinstance(port, str):
            pdoc.error("may not be specified when `port` is a port name", "endPort")
            ok = False
        elif isinstance(port, int) and end_port < port:
            pdoc.error(f"must be greater than or equal to port ({end_port} < {port})", "endPort")
            ok = False
    return PortSpec(protocol, port, end_port) if ok else None
