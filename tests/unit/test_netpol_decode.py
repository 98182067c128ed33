"""NetworkPolicy decoding (spec/netpol.py) and its IR (netpol/model.py).

Inputs that must fail are in data/bad/netpol-*.yaml (test_spec_load_bad.py checks them)."""

from __future__ import annotations

import ipaddress

import pytest

from testbed.errors import SpecError
from testbed.netpol.model import IPPeer, PodPeer, PortMatch, policy_from_spec
from testbed.spec.netpol import IPBlockSpec, PeerSpec, PortSpec, RuleSpec
from testbed.spec.selectors import LabelSelector, Requirement

from ._netpol import REPO, policies


def test_scenario003_policy_loads_from_the_manifest(manifests):
    m = manifests((REPO / "manifests" / "seed003-access-nginx.yaml").read_text(encoding="utf-8"))
    (spec,) = m.policies
    assert (spec.namespace, spec.name, spec.full_name) == ("default", "access-nginx", "default/access-nginx")
    assert spec.pod_selector == LabelSelector((("app", "nginx"),))
    assert spec.policy_types == ("Ingress",) and not spec.policy_types_given
    assert spec.ingress == (RuleSpec((PeerSpec(pod_selector=LabelSelector((("access", "true"),))),), ()),)
    assert spec.egress == ()


@pytest.mark.parametrize(
    "body,types,given",
    [
        ("ingress: [{}]", ("Ingress",), False),
        ("egress: [{}]", ("Ingress", "Egress"), False),  # egress rules imply Egress
        ("egress: []", ("Ingress",), False),  # an empty list does not
        ("policyTypes: []\negress: [{}]", ("Ingress", "Egress"), False),  # empty list = absent
        ("policyTypes: [Egress]", ("Egress",), True),
        ("policyTypes: [Egress, Ingress]", ("Ingress", "Egress"), True),
        ("policyTypes: [Ingress, Ingress]", ("Ingress",), True),  # accepted by the API server
    ],
)
def test_policy_types_given_or_inferred(body, types, given):
    (spec,) = policies("metadata: {name: p}\nspec:\n  podSelector: {}\n  " + body.replace("\n", "\n  "))
    assert spec.policy_types == types
    assert spec.policy_types_given is given


def test_peers_ports_and_ip_blocks_decode():
    (spec,) = policies("""
        metadata: {name: p, namespace: y}
        spec:
          podSelector:
            matchExpressions: [{key: pod, operator: In, values: [a, b]}]
          ingress:
            - from:
                - namespaceSelector: {}
                - namespaceSelector: {matchLabels: {team: blue}}
                  podSelector: {matchLabels: {pod: a}}
                - ipBlock: {cidr: 10.0.0.1/8, except: [10.1.0.0/16]}
              ports:
                - {port: 80}
                - {port: http}
                - {protocol: UDP, port: 8000, endPort: 8080}
                - {protocol: SCTP}
                - {}
    """)
    rule = spec.ingress[0]
    assert rule.peers == (
        PeerSpec(namespace_selector=LabelSelector()),
        PeerSpec(LabelSelector((("pod", "a"),)), LabelSelector((("team", "blue"),))),
        PeerSpec(ip_block=IPBlockSpec("10.0.0.1/8", ("10.1.0.0/16",))),
    )
    assert rule.ports == (
        PortSpec("TCP", 80),
        PortSpec("TCP", "http"),
        PortSpec("UDP", 8000, 8080),
        PortSpec("SCTP"),
        PortSpec("TCP"),
    )
    assert spec.pod_selector == LabelSelector((), (Requirement("pod", "In", ("a", "b")),))


def test_the_ir_makes_defaults_explicit():
    (spec,) = policies("""
        metadata: {name: p, namespace: y}
        spec:
          podSelector: {}
          policyTypes: [Egress]
          ingress: [{}]
          egress:
            - to: [{podSelector: {}}, {namespaceSelector: {}}, {ipBlock: {cidr: 10.0.0.1/8}}]
              ports: [{port: 80}, {port: http}, {port: 8000, endPort: 8080}, {protocol: UDP}]
            - {}
    """)
    policy = policy_from_spec(spec)
    assert policy.full_name == "y/p" and policy.types == ("Egress",) and policy.types_given
    assert policy.ingress is None and policy.ignored == ("ingress",)  # written but left out
    first, second = policy.egress
    assert first.path == "spec.egress[0]" and first.peer_key == "to"
    assert first.peers == (
        PodPeer("y", None, LabelSelector()),
        PodPeer(None, LabelSelector(), None),
        IPPeer(ipaddress.ip_network("10.0.0.0/8")),
    )
    assert first.ports == (
        PortMatch("TCP", 80, 80),
        PortMatch("TCP", name="http"),
        PortMatch("TCP", 8000, 8080),
        PortMatch("UDP"),
    )
    assert second.peers is None and second.ports is None  # everyone, everything


def test_ip_block_minus_except_as_disjoint_prefixes():
    peer = IPPeer(
        ipaddress.ip_network("10.0.0.0/8"),
        (
            ipaddress.ip_network("10.1.0.0/16"),
            ipaddress.ip_network("10.1.2.0/24"),
            ipaddress.ip_network("10.200.0.0/13"),
        ),
    )
    nets = peer.ipv4_networks
    covered = sum(n.num_addresses for n in nets)
    assert covered == 2**24 - 2**16 - 2**19
    for probe in ("10.0.0.1", "10.1.0.1", "10.1.2.3", "10.2.0.0", "10.200.1.1", "10.255.255.255", "11.0.0.0"):
        ip = ipaddress.ip_address(probe)
        assert peer.contains(ip) == any(ip in n for n in nets), probe
    assert IPPeer(ipaddress.ip_network("fd00::/8")).ipv4_networks == ()


def test_a_loaded_file_with_a_bad_policy_names_file_object_and_field(yaml_file):
    from testbed.spec.workloads import load_manifests

    path = yaml_file(
        "bad.yaml",
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: web, namespace: default}
        spec:
          podSelector: {}
          ingress:
            - ports: [{port: 80, endPort: 79}]
    """,
    )
    with pytest.raises(SpecError) as info:
        load_manifests([path])
    assert str(info.value) == (
        f"{path} (NetworkPolicy default/web): spec.ingress[0].ports[0].endPort: "
        "must be greater than or equal to port (79 < 80)"
    )
