"""Service decoding (spec/services.py): defaults, every field, scenario 002's example.

Inputs that must fail are in data/bad/service-*.yaml (checked by test_spec_load_bad.py, each
problem with its file, object and field path); here are the ones that must load, and what
they decode to.
"""

from __future__ import annotations

import pytest

from testbed.errors import SpecError
from testbed.spec.services import DEFAULT_AFFINITY_TIMEOUT, ServicePort, ServiceSpec

from ._services import DATA, REPO
from ._yaml import v1_list


def _one(manifests, text: str) -> ServiceSpec:
    (svc,) = manifests(text).services
    return svc


def test_scenario002_nodeport_example_as_written_in_the_repository(manifests):
    from testbed.spec.workloads import load_manifests

    m = load_manifests([str(REPO / "manifests" / "seed002-nodeport.yaml")])
    (svc,) = m.services
    assert (svc.namespace, svc.name, svc.type) == ("default", "myapp-service", "NodePort")
    assert svc.ports == (ServicePort("", 80, "TCP", 80, 30008),)
    assert svc.selector == {"app": "myapp", "type": "front-end"}
    assert svc.external_traffic_policy == "Cluster"  # defaulted for a NodePort Service
    (web,) = m.workloads
    assert web.ref.name == "myapp" and web.template.labels == {"app": "myapp", "type": "front-end"}


def test_target_port_defaults_to_port(manifests):
    svc = _one(
        manifests,
        """
        apiVersion: v1
        kind: Service
        metadata: {name: s}
        spec:
          type: NodePort
          selector: {app: a}
          ports: [{name: a, port: 80, nodePort: 30008}, {name: b, port: 81, targetPort: 0}]
    """,
    )
    assert [(p.port, p.target_port) for p in svc.ports] == [(80, 80), (81, 81)]


def test_defaults_of_a_minimal_service(manifests):
    svc = _one(
        manifests,
        """
        apiVersion: v1
        kind: Service
        metadata: {name: s, labels: {app: a}, annotations: {note: x}}
        spec:
          selector: {app: a}
          ports: [{port: 53, protocol: UDP, targetPort: dns}]
    """,
    )
    assert svc.type == "ClusterIP" and svc.cluster_ip == "" and not svc.headless
    assert svc.ports == (ServicePort("", 53, "UDP", "dns"),)
    assert svc.session_affinity == "None" and svc.affinity_timeout == DEFAULT_AFFINITY_TIMEOUT
    assert svc.external_traffic_policy == "" and svc.internal_traffic_policy == "Cluster"
    assert not svc.externally_accessible and not svc.needs_node_ports
    assert svc.labels == {"app": "a"} and svc.annotations == {"note": "x"}
    assert str(svc.ref) == "Service default/s" and svc.key == "default/s"


def test_the_fixture_decodes_every_flavour():
    from testbed.spec.workloads import load_manifests

    m = load_manifests([str(DATA / "app.yaml")])
    by = {s.name: s for s in m.services}
    assert sorted(by) == ["db", "nobody", "web", "web-all", "web-headless", "web-lb", "web-nodeport", "web-sticky"]
    assert by["web-headless"].headless and by["web-headless"].cluster_ip == "None"
    assert by["db"].type == "ExternalName" and by["db"].external_name == "db.example.com" and by["db"].ports == ()
    assert by["web-sticky"].session_affinity == "ClientIP" and by["web-sticky"].affinity_timeout == 600
    assert by["web-lb"].external_traffic_policy == "Local" and by["web-lb"].needs_node_ports
    assert [(p.name, p.port, p.protocol, p.target_port) for p in by["web-all"].ports] == [
        ("http", 80, "TCP", "http"),
        ("metrics", 9100, "TCP", "metrics"),
        ("dns", 53, "UDP", "dns"),
    ]
    assert by["web-nodeport"].ports == (ServicePort("", 8080, "TCP", 8080, 30080),)


def test_every_accepted_field(manifests):
    svc = _one(
        manifests,
        """
        apiVersion: v1
        kind: Service
        metadata: {name: full, namespace: default}
        spec:
          type: LoadBalancer
          clusterIP: 10.96.0.50
          clusterIPs: [10.96.0.50]
          ipFamilies: [IPv4]
          ipFamilyPolicy: PreferDualStack
          selector: {app: a}
          ports:
            - {name: http, port: 80, targetPort: http, nodePort: 30001, appProtocol: http}
            - {name: dns, port: 53, protocol: UDP, nodePort: 30001}
          sessionAffinity: ClientIP
          externalTrafficPolicy: Local
          internalTrafficPolicy: Local
          healthCheckNodePort: 32000
          externalIPs: [192.168.1.99]
          loadBalancerIP: 192.168.1.210
          loadBalancerSourceRanges: [" 192.168.1.0/24"]
          loadBalancerClass: example.com/lb
          allocateLoadBalancerNodePorts: false
          publishNotReadyAddresses: true
          trafficDistribution: PreferClose
        status: {loadBalancer: {ingress: [{ip: 1.2.3.4}]}}
    """,
    )
    assert svc.cluster_ip == "10.96.0.50"
    assert svc.ports[0] == ServicePort("http", 80, "TCP", "http", 30001, "http")
    assert svc.ports[1] == ServicePort("dns", 53, "UDP", 53, 30001)  # one nodePort, two protocols
    assert svc.affinity_timeout == DEFAULT_AFFINITY_TIMEOUT
    assert (svc.external_traffic_policy, svc.internal_traffic_policy) == ("Local", "Local")
    assert svc.health_check_node_port == 32000 and svc.external_ips == ("192.168.1.99",)
    assert svc.load_balancer_ip == "192.168.1.210" and svc.load_balancer_source_ranges == ("192.168.1.0/24",)
    assert svc.load_balancer_class == "example.com/lb" and not svc.allocate_load_balancer_node_ports
    assert not svc.needs_node_ports and svc.publish_not_ready_addresses


def test_cluster_ips_alone_gives_the_cluster_ip(manifests):
    svc = _one(
        manifests,
        """
        apiVersion: v1
        kind: Service
        metadata: {name: s}
        spec: {clusterIPs: [10.96.7.7], ports: [{port: 80}]}
    """,
    )
    assert svc.cluster_ip == "10.96.7.7"


def test_external_ips_make_a_cluster_ip_service_externally_accessible(manifests):
    svc = _one(
        manifests,
        """
        apiVersion: v1
        kind: Service
        metadata: {name: s}
        spec: {externalIPs: [192.168.1.99], externalTrafficPolicy: Local, ports: [{port: 80}]}
    """,
    )
    assert svc.externally_accessible and svc.external_traffic_policy == "Local"


def test_headless_service_may_have_no_ports(manifests):
    svc = _one(
        manifests,
        """
        apiVersion: v1
        kind: Service
        metadata: {name: h}
        spec: {clusterIP: None, selector: {app: a}}
    """,
    )
    assert svc.headless and svc.ports == ()


def test_external_name_drops_its_selector_and_accepts_a_trailing_dot(manifests):
    svc = _one(
        manifests,
        """
        apiVersion: v1
        kind: Service
        metadata: {name: db}
        spec: {type: ExternalName, externalName: db.example.com., selector: {app: a}, ports: [{port: 5432}]}
    """,
    )
    assert svc.selector == {} and svc.external_name == "db.example.com."


def test_a_service_inside_a_list_names_its_path(manifests):
    with pytest.raises(SpecError) as info:
        manifests(
            v1_list("""
            apiVersion: v1
            kind: Service
            metadata: {name: s}
            spec: {type: ClusterIP, ports: [{port: 80, nodePort: 30000}]}
        """)
        )
    (problem,) = info.value.problems
    assert (problem.document, problem.path) == ("Service default/s", "items[0].spec.ports[0].nodePort")


def test_duplicate_services_are_refused_by_the_loader(manifests):
    svc = """
        apiVersion: v1
        kind: Service
        metadata: {name: s}
        spec: {ports: [{port: 80}]}
    """
    with pytest.raises(SpecError, match="duplicate Service default/s"):
        manifests(svc + "---\n" + svc)
