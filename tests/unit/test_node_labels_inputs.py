"""Nodes carry kubelet's, kubeadm's and kind's labels (spec/node_labels.py); Pending pods are
listed; manifests come as kubectl takes them (spec/inputs.py); deleting a Namespace empties it."""

from __future__ import annotations

import io
import json
import pathlib

import pytest

from testbed.errors import SpecError
from testbed.experiment.changes import remove
from testbed.plan.build import plan_cluster
from testbed.spec import decode
from testbed.spec.inputs import expand_inputs
from testbed.spec.node_labels import EXCLUDE_FROM_LB, machine_arch
from testbed.spec.workloads import load_manifests
from testbed.views import get_pods

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_labels_per_node_with_racks(topology):
    c = topology("""
        kind: Cluster
        apiVersion: kind.x-k8s.io/v1alpha4
        name: lab
        nodes: [{role: control-plane}, {role: worker}, {role: worker, labels: {disk: ssd}}]
        ---
        apiVersion: testbed/v1alpha1
        kind: TestbedConfig
        underlay:
          subnets:
            - {name: rack-a, cidr: 192.168.1.0/24}
            - {name: rack-b, cidr: 192.168.2.0/24}
        nodes: [{name: lab-worker2, rack: rack-b}]
    """)
    cp, w1, w2 = (dict(n.labels) for n in c.nodes)
    assert cp["node-role.kubernetes.io/control-plane"] == "" and cp[EXCLUDE_FROM_LB] == ""
    for labels, name in ((cp, "lab-control-plane"), (w1, "lab-worker"), (w2, "lab-worker2")):
        assert labels["kubernetes.io/hostname"] == name
        assert labels["kubernetes.io/os"] == labels["beta.kubernetes.io/os"] == "linux"
        assert labels["kubernetes.io/arch"] == labels["beta.kubernetes.io/arch"] == machine_arch()
        assert labels["topology.kubernetes.io/region"] == "lab"
    assert EXCLUDE_FROM_LB not in w1 and "node-role.kubernetes.io/control-plane" not in w1
    assert (
        cp["topology.kubernetes.io/zone"],
        w1["topology.kubernetes.io/zone"],
        w2["topology.kubernetes.io/zone"],
    ) == ("rack-a", "rack-a", "rack-b")
    assert w2["disk"] == "ssd"


def test_no_zone_labels_without_racks(topology):
    c = topology("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n")
    assert not any(k.startswith("topology.kubernetes.io/") for k in c.nodes[0].labels)


def test_kubeadm_config_patches_node_labels_are_applied(topology):
    c = topology("""
        kind: Cluster
        apiVersion: kind.x-k8s.io/v1alpha4
        kubeadmConfigPatches:
          - |
            kind: JoinConfiguration
            nodeRegistration:
              kubeletExtraArgs:
                node-labels: "tier=edge"
        nodes:
          - role: control-plane
            kubeadmConfigPatches:
              - |
                kind: InitConfiguration
                nodeRegistration:
                  kubeletExtraArgs:
                    node-labels: "ingress-ready=true"
          - role: worker
          - role: worker
            kubeadmConfigPatches:
              - |
                apiVersion: kubeadm.k8s.io/v1beta4
                kind: JoinConfiguration
                nodeRegistration:
                  kubeletExtraArgs:
                    - {name: node-labels, value: "gpu=yes,tier=core"}
    """)
    cp, w1, w2 = (dict(n.labels) for n in c.nodes)
    assert cp["ingress-ready"] == "true" and "tier" not in cp
    assert w1["tier"] == "edge" and "ingress-ready" not in w1
    assert (w2["tier"], w2["gpu"]) == ("core", "yes")
    assert not any("kubeadmConfigPatches" in n for n in c.notes)


def test_bad_node_labels_in_a_patch_name_the_field(topology):
    with pytest.raises(SpecError) as err:
        topology("""
            kind: Cluster
            apiVersion: kind.x-k8s.io/v1alpha4
            kubeadmConfigPatches:
              - |
                kind: InitConfiguration
                nodeRegistration: {kubeletExtraArgs: {node-labels: "ingress-ready"}}
        """)
    assert (
        "kubeadmConfigPatches[0]: nodeRegistration.kubeletExtraArgs.node-labels: 'ingress-ready' is not "
        "key=value" in str(err.value)
    )


def _deployment(selector: str) -> str:
    return f"""
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: web}}
        spec:
          replicas: 2
          selector: {{matchLabels: {{app: web}}}}
          template:
            metadata: {{labels: {{app: web}}}}
            spec:
              nodeSelector: {selector}
              containers: [{{name: web, image: nginx}}]
    """


def test_node_selector_on_well_known_labels_schedules(manifests):
    from testbed.spec.topology import load_topology

    cluster = load_topology(str(REPO / "topologies" / "three-nodes.yaml"))
    plan = plan_cluster(cluster, manifests(_deployment("{beta.kubernetes.io/os: linux}")))
    assert sorted(p.node for p in plan.pods if p.namespace == "default") == ["kind-worker", "kind-worker2"]
    assert plan.pending == ()


def test_pending_pods_are_listed_with_the_reason(manifests):
    from testbed.spec.topology import load_topology

    cluster = load_topology(str(REPO / "topologies" / "three-nodes.yaml"))
    plan = plan_cluster(cluster, manifests(_deployment("{kubernetes.io/os: windows}")))
    assert len(plan.pending) == 2 and all("node" in p.reason for p in plan.pending)
    table = get_pods(plan, wide=True, namespace="default")
    rows = [line for line in table.splitlines() if "Pending" in line]
    assert len(rows) == 2 and all("<none>" in r and r.startswith("web-") for r in rows)


def test_dir_recursive_stdin_json_and_helm_output(tmp_path, monkeypatch):
    sub = tmp_path / "app" / "sub"
    sub.mkdir(parents=True)
    (tmp_path / "app" / "b.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")
    (tmp_path / "app" / "a.json").write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "cfg", "namespace": "shop"},
                        "data": {"k": "v"},
                    }
                ],
            },
            indent=2,
        )
    )
    (tmp_path / "app" / "notes.txt").write_text("not a manifest")
    # helm template: `# Source:` comments, empty documents, objects in a namespace another file creates
    (sub / "chart.yml").write_text(
        "---\n# Source: shop/templates/sa.yaml\n---\n# Source: shop/templates/pod.yaml\n"
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\n"
        "spec:\n  containers:\n    - name: web\n      image: nginx\n---\n"
    )
    folder = str(tmp_path / "app")
    assert expand_inputs([folder]) == [f"{folder}/a.json", f"{folder}/b.yaml"]
    files = expand_inputs([folder], recursive=True)
    assert files == [f"{folder}/a.json", f"{folder}/b.yaml", f"{folder}/sub/chart.yml"]
    m = load_manifests(files)
    assert [p.ref.name for p in m.pods] == ["web"] and [o.ref.name for o in m.others] == ["cfg"]
    with pytest.raises(SpecError, match="no \\*.yaml, \\*.yml or \\*.json files in this folder"):
        expand_inputs([str(tmp_path)])  # only a subfolder holds manifests: -R reads it
    monkeypatch.setattr(decode, "_STDIN_CACHE", [])
    monkeypatch.setattr(
        "sys.stdin",
        io.TextIOWrapper(io.BytesIO(b'{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}')),
    )
    assert [o.ref.kind for o in load_manifests(expand_inputs(["-"])).others] == ["ServiceAccount"]
    assert [o.ref.kind for o in load_manifests(["-"]).others] == ["ServiceAccount"]  # read once, kept


def test_deleting_a_namespace_deletes_what_is_in_it(manifests):
    base = manifests("""
        apiVersion: v1
        kind: Namespace
        metadata: {name: shop}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: web, namespace: shop}
        spec: {containers: [{name: web}]}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop}
        spec: {selector: {app: web}, ports: [{port: 80}]}
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny, namespace: shop}
        spec: {podSelector: {}}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: cfg, namespace: shop}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: other}
        spec: {containers: [{name: web}]}
    """)
    left = remove(base, manifests("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"))
    assert [n.name for n in left.namespaces] == []
    assert [p.ref.name for p in left.pods] == ["other"]
    assert left.services == () and left.policies == () and left.others == ()


def test_cli_plan_reads_folders_recursively_and_stdin(tmp_path, capsys, monkeypatch):
    from testbed.cli import main

    boutique = REPO / "tests" / "unit" / "data" / "realworld" / "online-boutique"
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "app.yaml").write_bytes((boutique / "kubernetes-manifests.yaml").read_bytes())
    topology = str(REPO / "topologies" / "three-nodes.yaml")
    assert main(["plan", topology, "-f", str(tmp_path), "-R"]) == 0
    out = capsys.readouterr().out
    assert "note: 11 ServiceAccount: not emulated, no effect on the network" in out
    assert "frontend-external       LoadBalancer" in out and out.count("Running") == 14  # 12 apps + 2 CoreDNS
    assert main(["plan", topology, "-f", str(tmp_path)]) == 2  # without -R: no manifest in the folder
    assert "no *.yaml, *.yml or *.json files in this folder (-R reads its subfolders)" in capsys.readouterr().err
    monkeypatch.setattr(decode, "_STDIN_CACHE", [])
    monkeypatch.setattr(
        "sys.stdin", io.TextIOWrapper(io.BytesIO(b"apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n"))
    )
    assert main(["plan", topology, "-f", "-"]) == 2
    assert capsys.readouterr().err.strip() == (
        "testbed: error: - (document 1): kind: unknown kind 'Deploymnet'; did you mean 'Deployment'? (known: "
        "Namespace, Pod, ReplicationController, ReplicaSet, Deployment, Service, NetworkPolicy, Ingress, "
        "IngressClass, List, and every other built-in kind of Kubernetes 1.37.0, or a custom resource of another "
        "API group)"
    )


def _meta(pending: int) -> dict:
    return {
        "experiment": {"name": "x"},
        "run_id": "r",
        "passed": True,
        "seed": 0,
        "timings": {"build": 0.1},
        "cluster": {"nodes": 3, "pods": 2, "routing": "host-gw", "pending": pending},
    }


def test_a_run_with_pending_pods_says_so_in_its_verdict_line():
    from testbed.experiment.results import summary_markdown

    verdict = next(line for line in summary_markdown(_meta(2), []).splitlines() if "Verdict" in line)
    assert verdict.endswith("2 pod(s) Pending (see warnings).")
    verdict = next(line for line in summary_markdown(_meta(0), []).splitlines() if "Verdict" in line)
    assert "Pending" not in verdict


def test_load_balancer_addresses_skip_excluded_nodes_unless_none_is_left(manifests):
    from testbed.plan.loadbalancers import load_balancer_nodes
    from testbed.spec.topology import load_topology

    three = plan_cluster(load_topology(str(REPO / "topologies" / "three-nodes.yaml")), manifests(""))
    assert load_balancer_nodes(three.nodes) == ["kind-worker", "kind-worker2"]
    one = plan_cluster(
        load_topology(str(REPO / "tests" / "unit" / "data" / "good" / "topo-default.yaml")), manifests("")
    )
    assert load_balancer_nodes(one.nodes) == ["kind-control-plane"]  # kind's default cluster keeps its LB
