"""Inputs that must load, and exactly what they decode to (spec/topology.py, spec/workloads.py)."""

from __future__ import annotations

import pathlib

import pytest

from testbed.spec.model import Container, ContainerPort, ExternalHost, Manifests, Namespace, Taint, Toleration
from testbed.spec.node_labels import machine_arch
from testbed.spec.selectors import LabelSelector, Requirement
from testbed.spec.topology import CONTROL_PLANE_TAINT, load_topology
from testbed.spec.workloads import load_manifests

from ._yaml import v1_list

REPO = pathlib.Path(__file__).resolve().parents[2]
GOOD = pathlib.Path(__file__).resolve().parent / "data" / "good"


def _manifests(name: str) -> Manifests:
    return load_manifests([str(GOOD / name)])


def _workload(m: Manifests, kind: str, name: str):
    (wl,) = [w for w in m.workloads if w.ref.kind == kind and w.ref.name == name]
    return wl


@pytest.mark.parametrize("path", sorted(GOOD.glob("*.yaml")), ids=lambda p: p.name)
def test_every_good_file_loads(path):
    if path.name.startswith("topo-"):
        assert load_topology(str(path)).nodes
    else:
        m = load_manifests([str(path)])
        assert m.pods or m.workloads
        assert m.files == (str(path),)


# -- workloads -----------------------------------------------------------------------------


def test_each_kind_in_one_multi_document_file():
    m = _manifests("all-kinds.yaml")
    assert m.namespaces == (Namespace("shop", {"team": "payments"}),)
    assert [(p.ref.kind, p.ref.namespace, p.ref.name) for p in m.pods] == [("Pod", "shop", "client")]
    assert [(w.ref.kind, w.ref.namespace, w.ref.name, w.replicas) for w in m.workloads] == [
        ("ReplicationController", "default", "legacy", 2),
        ("ReplicationController", "default", "legacy-defaulted", 1),
        ("ReplicaSet", "shop", "front-end", 2),
        ("Deployment", "default", "web", 4),
    ]
    assert m.pods[0].template.containers == (Container("busybox", ()),)
    assert m.pods[0].template.labels == {"role": "client"}
    assert str(m.pods[0].ref) == "Pod shop/client"
    assert m.pods[0].ref.file == str(GOOD / "all-kinds.yaml")


def test_replication_controller_selector_is_a_plain_map():
    rc = _workload(_manifests("all-kinds.yaml"), "ReplicationController", "legacy")
    assert rc.selector == LabelSelector((("app", "legacy"),))
    assert rc.template.labels == {"app": "legacy", "tier": "backend"}
    assert rc.template.containers == (Container("app", (ContainerPort(8080, "TCP", ""),)),)


def test_replication_controller_without_selector_selects_its_template_labels():
    rc = _workload(_manifests("all-kinds.yaml"), "ReplicationController", "legacy-defaulted")
    assert rc.selector == LabelSelector((("app", "legacy-defaulted"), ("tier", "backend")))
    assert rc.replicas == 1  # replicas defaults to 1


def test_list_kind_unwraps_its_items():
    m = _manifests("list.yaml")
    assert [n.name for n in m.namespaces] == ["listed"]
    assert [(p.ref.namespace, p.ref.name) for p in m.pods] == [("listed", "solo")]
    (api,) = m.workloads
    assert (api.ref.kind, api.ref.namespace, api.ref.name, api.replicas) == ("Deployment", "listed", "api", 2)
    assert api.template.containers[0].ports == (ContainerPort(8000),)


def test_list_items_report_their_index_in_the_path(manifests):
    from testbed.errors import SpecError

    with pytest.raises(SpecError) as info:
        manifests(
            v1_list(
                """
            apiVersion: v1
            kind: Pod
            metadata: {name: ok}
            spec: {containers: [{name: app}]}
        """,
                """
            apiVersion: v1
            kind: Pod
            metadata: {name: bad}
            spec: {containers: [{name: app, prots: []}]}
        """,
            )
        )
    (problem,) = info.value.problems
    assert (problem.document, problem.path, problem.message) == (
        "Pod default/bad",
        "items[1].spec.containers[0].prots",
        "unknown field 'prots'",
    )


def test_match_expressions_all_operators():
    m = _manifests("match-expressions.yaml")
    sel = _workload(m, "Deployment", "selective").selector
    assert sel.match_labels == (("app", "selective"),)
    assert sel.match_expressions == (
        Requirement("tier", "In", ("frontend", "edge")),
        Requirement("env", "NotIn", ("prod",)),
        Requirement("track", "Exists"),
        Requirement("canary", "DoesNotExist"),
    )
    assert str(sel) == "app=selective,tier in (frontend,edge),env notin (prod),track,!canary"
    only = _workload(m, "ReplicaSet", "only-expressions").selector
    assert only == LabelSelector((), (Requirement("app", "In", ("only-expressions",)),))


def test_several_containers_with_tcp_udp_sctp_named_ports():
    (pod,) = _manifests("multi-container-ports.yaml").pods
    assert pod.template.containers == (
        Container("web", (ContainerPort(80, "TCP", "http"), ContainerPort(443, "TCP", "https"))),
        Container("dns", (ContainerPort(53, "UDP", "dns-udp"), ContainerPort(53, "TCP", "dns-tcp"))),
        Container("signalling", (ContainerPort(7777, "SCTP", "sig"), ContainerPort(7777, "UDP", ""))),
    )


def test_fields_that_do_not_matter_to_networking_are_accepted_and_dropped():
    (wl,) = _manifests("ignored-fields.yaml").workloads
    assert wl.replicas == 2
    assert wl.template.containers == (Container("app", (ContainerPort(8080, "TCP", "http"),)),)
    assert wl.template.annotations == {"prometheus.io/scrape": "true"}
    assert wl.template.labels == {"app": "busy"}
    assert wl.template.node_name == "" and dict(wl.template.node_selector) == {}


def test_scheduling_fields_are_decoded(manifests):
    m = manifests("""
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          nodeName: kind-worker
          nodeSelector: {disk: ssd}
          tolerations:
            - {operator: Exists}
            - {key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}
            - {key: dedicated, value: gpu, effect: NoExecute, tolerationSeconds: 30}
          containers: [{name: app}]
    """)
    t = m.pods[0].template
    assert t.node_name == "kind-worker"
    assert dict(t.node_selector) == {"disk": "ssd"}
    assert t.tolerations == (
        Toleration("", "Exists", "", ""),
        Toleration("node-role.kubernetes.io/control-plane", "Exists", "", "NoSchedule"),
        Toleration("dedicated", "Equal", "gpu", "NoExecute", 30),  # tolerationSeconds: the taint manager
    )


def test_null_label_value_is_the_empty_string(manifests):
    m = manifests("""
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
          labels: {app: web, flag: }
        spec: {containers: [{name: app}]}
    """)
    assert m.pods[0].template.labels == {"app": "web", "flag": ""}


def test_quickstart_manifest():
    m = load_manifests([str(REPO / "manifests" / "quickstart-app.yaml")])
    (web,) = m.workloads
    assert (web.ref.kind, web.ref.name, web.replicas) == ("Deployment", "web", 3)
    assert web.template.containers[0].ports == (
        ContainerPort(80, "TCP", "http"),
        ContainerPort(53, "UDP", "dns"),
        ContainerPort(7777, "SCTP", "sig"),
    )
    (pod,) = m.pods
    assert [c.name for c in pod.template.containers] == ["app", "sidecar"]


def test_empty_documents_are_skipped(manifests):
    m = manifests("""
        ---
        # nothing here
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec: {containers: [{name: app}]}
        ---
    """)
    assert [p.ref.name for p in m.pods] == ["p"]


def test_yaml_merge_keys_are_not_duplicates(manifests):
    m = manifests("""
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
          labels: &common {app: web, tier: front}
        spec:
          nodeSelector:
            <<: *common
            tier: back
          containers: [{name: app}]
    """)
    assert dict(m.pods[0].template.node_selector) == {"app": "web", "tier": "back"}


# -- topologies ----------------------------------------------------------------------------


def test_default_cluster_is_one_untainted_control_plane():
    c = load_topology(str(GOOD / "topo-default.yaml"))
    assert c.name == "kind"
    (node,) = c.nodes
    assert (node.name, node.role, node.taints, node.pod_cidr) == ("kind-control-plane", "control-plane", (), None)
    # kubelet's labels (and their beta. forms), kubeadm's on a control-plane node
    assert node.labels == {
        "kubernetes.io/hostname": "kind-control-plane",
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": machine_arch(),
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": machine_arch(),
        "node-role.kubernetes.io/control-plane": "",
        "node.kubernetes.io/exclude-from-external-load-balancers": "",
    }
    # kind's defaults (SetDefaultsCluster): 10.244.0.0/16 pods, 10.96.0.0/16 services, iptables
    assert (c.pod_subnet, c.service_subnet, c.kube_proxy_mode) == ("10.244.0.0/16", "10.96.0.0/16", "iptables")
    # testbed defaults: scenario 002's node network, /24 per node, host-gw
    assert (c.underlay_subnet, c.first_node_host, c.node_cidr_prefix, c.routing, c.mtu) == (
        "192.168.1.0/24",
        2,
        24,
        "host-gw",
        1500,
    )
    assert c.external_hosts == () and c.notes == () and c.allow_overlapping_pod_cidrs is False


@pytest.mark.parametrize("nodes", ["nodes: []", "nodes:", "nodes: [{}]"])
def test_empty_node_list_defaults_like_kind(topology, nodes):
    c = topology(f"""
        kind: Cluster
        apiVersion: kind.x-k8s.io/v1alpha4
        {nodes}
    """)
    assert [(n.name, n.role, n.taints) for n in c.nodes] == [("kind-control-plane", "control-plane", ())]


def test_named_cluster_names_its_nodes_like_kind():
    c = load_topology(str(GOOD / "topo-named.yaml"))
    assert c.name == "demo"
    assert [(n.name, n.role) for n in c.nodes] == [
        ("demo-control-plane", "control-plane"),
        ("demo-worker", "worker"),
        ("demo-worker2", "worker"),
    ]
    assert c.nodes[0].taints == (Taint("node-role.kubernetes.io/control-plane", "", "NoSchedule"),)
    assert c.nodes[0].taints == (CONTROL_PLANE_TAINT,)
    assert c.nodes[1].taints == () and c.nodes[2].taints == ()
    assert c.nodes[1].labels["disk"] == "ssd" and "disk" not in c.nodes[2].labels
    assert c.nodes[1].labels["kubernetes.io/hostname"] == "demo-worker"
    assert "node-role.kubernetes.io/control-plane" not in c.nodes[1].labels
    assert c.kube_proxy_mode == "nftables"


def test_several_control_planes_are_numbered_and_stay_tainted(topology):
    c = topology("""
        kind: Cluster
        apiVersion: kind.x-k8s.io/v1alpha4
        nodes: [{role: control-plane}, {role: control-plane}, {role: worker}, {role: worker}, {role: worker}]
    """)
    assert [n.name for n in c.nodes] == [
        "kind-control-plane",
        "kind-control-plane2",
        "kind-worker",
        "kind-worker2",
        "kind-worker3",
    ]
    assert [len(n.taints) for n in c.nodes] == [1, 1, 0, 0, 0]


def test_ignored_kind_fields_produce_notes():
    c = load_topology(str(GOOD / "topo-ignored.yaml"))
    assert c.notes == (
        "featureGates: not applicable to an emulated cluster, ignored",
        "kubeadmConfigPatches: not applicable to an emulated cluster, ignored",
        "nodes[0].image: not applicable to an emulated node, ignored",
        "nodes[0].extraPortMappings: not applicable to an emulated node, ignored",
        "networking.apiServerPort: the testbed is the CNI and the API server; ignored",
        "networking.disableDefaultCNI: the testbed is the CNI and the API server; ignored",
    )
    assert [n.name for n in c.nodes] == ["kind-control-plane", "kind-worker"]


def test_three_nodes_example_topology():
    c = load_topology(str(REPO / "topologies" / "three-nodes.yaml"))
    assert [n.name for n in c.nodes] == ["kind-control-plane", "kind-worker", "kind-worker2"]
    assert c.service_subnet == "10.96.0.0/12"  # set explicitly in the file
    assert c.external_hosts == (ExternalHost("laptop", "192.168.1.10"),)


def test_testbed_config_options(topology):
    c = topology("""
        kind: Cluster
        apiVersion: kind.x-k8s.io/v1alpha4
        name: lab
        nodes: [{role: control-plane}, {role: worker}]
        networking: {podSubnet: 10.200.0.0/16, serviceSubnet: 10.201.0.0/16, kubeProxyMode: none}
        ---
        apiVersion: testbed/v1alpha1
        kind: TestbedConfig
        underlay: {subnet: 10.0.5.0/24, firstHost: 20}
        podCIDRPrefix: 26
        mtu: 9000
        nodes: [{name: lab-worker, podCIDR: 10.200.7.0/26}]
        externalHosts: [{name: gw, ip: 10.0.5.1}]
    """)
    assert (c.pod_subnet, c.service_subnet, c.kube_proxy_mode) == ("10.200.0.0/16", "10.201.0.0/16", "none")
    assert (c.underlay_subnet, c.first_node_host, c.node_cidr_prefix, c.mtu) == ("10.0.5.0/24", 20, 26, 9000)
    assert [(n.name, n.pod_cidr) for n in c.nodes] == [("lab-control-plane", None), ("lab-worker", "10.200.7.0/26")]
    assert c.external_hosts == (ExternalHost("gw", "10.0.5.1"),)


def test_overlapping_node_cidrs_accepted_when_allowed():
    c = load_topology(str(GOOD / "topo-overlap-allowed.yaml"))
    assert c.allow_overlapping_pod_cidrs is True
    assert [(n.name, n.pod_cidr) for n in c.nodes] == [
        ("kind-control-plane", None),
        ("kind-worker", "10.244.0.0/24"),
        ("kind-worker2", "10.244.0.0/24"),
    ]


def test_loaded_specs_are_frozen():
    import dataclasses

    c = load_topology(str(GOOD / "topo-default.yaml"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.name = "other"  # type: ignore[misc]
