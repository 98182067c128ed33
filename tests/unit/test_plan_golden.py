"""The quickstart plan, byte for byte, and its determinism (plan/build.py).

The golden file is regenerated only with UPDATE_GOLDEN=1:
    UPDATE_GOLDEN=1 python -m pytest -q tests/unit/test_plan_golden.py
Review the diff before committing it: every change is a change in what `testbed up` builds.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from ._golden import GOLDEN as GOLDEN_ROOT
from ._golden import check_golden

REPO = pathlib.Path(__file__).resolve().parents[2]
GOLDEN = GOLDEN_ROOT / "quickstart-plan.json"


def _quickstart(seed: int):
    cluster = load_topology(str(REPO / "topologies" / "three-nodes.yaml"))
    manifests = load_manifests([str(REPO / "manifests" / "quickstart-app.yaml")])
    return plan_cluster(cluster, manifests, seed)


def _render(plan) -> str:
    return json.dumps(plan.to_dict(), indent=2, sort_keys=True) + "\n"


def test_quickstart_plan_matches_golden():
    check_golden("quickstart-plan.json", _render(_quickstart(1)))


def test_golden_is_plain_json_without_local_paths():
    data = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert str(REPO) not in GOLDEN.read_text(encoding="utf-8")
    assert data["seed"] == 1 and data["cluster"] == "kind"
    assert sorted(data) == [
        "cluster",
        "externals",
        "generation",
        "ipam_next",
        "kube_proxy_mode",
        "mtu",
        "name_draws",
        "nodes",
        "notes",
        "pending",
        "pod_subnet",
        "pods",
        "routes",
        "routing",
        "seed",
        "service_subnet",
        "services",
        "system",
        "underlay_subnet",
        "warnings",
    ]


def test_quickstart_plan_content():
    plan = _quickstart(1)
    assert [(n.name, n.host_ip, n.pod_cidr, n.gateway, n.key) for n in plan.nodes] == [
        ("kind-control-plane", "192.168.1.2", "10.244.0.0/24", "10.244.0.1", "n0"),
        ("kind-worker", "192.168.1.3", "10.244.1.0/24", "10.244.1.1", "n1"),
        ("kind-worker2", "192.168.1.4", "10.244.2.0/24", "10.244.2.1", "n2"),
    ]
    assert [(x.name, x.ip, x.key) for x in plan.externals] == [("laptop", "192.168.1.10", "x0")]
    user = [p for p in plan.pods if p.namespace != "kube-system"]
    assert len(user) == 4
    # tainted: only the cluster's CoreDNS pods tolerate it (as kind's do)
    assert {p.name.rsplit("-", 2)[0] for p in plan.pods_on("kind-control-plane")} == {"coredns"}
    dns = [p for p in plan.pods if p.namespace == "kube-system"]
    assert len(dns) == 2 and all(p.served_by == "dnsmasq" and p.labels["k8s-app"] == "kube-dns" for p in dns)
    kube_dns = plan.services.service("kube-system", "kube-dns")
    assert kube_dns.cluster_ip == "10.96.0.10"
    assert {e.ip for s in plan.services.slices_of("kube-system", "kube-dns") for e in s.endpoints} == {
        p.ip for p in dns
    }
    assert sorted(len(plan.pods_on(n)) for n in ("kind-worker", "kind-worker2")) == [2, 2]
    two = plan.find_pod("default/two-containers")
    assert two is not None and two.containers == ("app", "sidecar") and two.owner == ""
    assert [(p.container, p.port, p.protocol, p.name) for p in two.ports] == [
        ("app", 8080, "TCP", "app"),
        ("sidecar", 9090, "TCP", "metrics"),
    ]
    web = [p for p in plan.pods if p.owner.startswith("ReplicaSet/web-")]
    assert len(web) == 3
    assert {p.labels["pod-template-hash"] for p in web} == {web[0].owner.split("-", 1)[1]}
    assert plan.warnings == () and plan.notes == ()
    assert len(plan.routes) == 6


def test_same_seed_same_plan():
    assert _quickstart(7).to_dict() == _quickstart(7).to_dict()
    assert _render(_quickstart(1)) == _render(_quickstart(1))


def test_another_seed_other_pod_names_same_network():
    a, b = _quickstart(1), _quickstart(2)
    web_a = {p.name for p in a.pods if p.owner.startswith("ReplicaSet/web")}
    web_b = {p.name for p in b.pods if p.owner.startswith("ReplicaSet/web")}
    assert web_a.isdisjoint(web_b)
    assert {p.uid for p in a.pods}.isdisjoint({p.uid for p in b.pods})
    # The ReplicaSet name comes from the template hash, not from the seed.
    assert {p.owner for p in a.pods if p.owner} == {p.owner for p in b.pods if p.owner}
    assert [(n.name, n.pod_cidr, n.host_ip) for n in a.nodes] == [(n.name, n.pod_cidr, n.host_ip) for n in b.nodes]
    assert a.routes == b.routes
    # Scheduling and IPAM do not depend on names: same nodes and IPs in the same order.
    assert [(p.node, p.ip) for p in a.pods] == [(p.node, p.ip) for p in b.pods]


@pytest.mark.parametrize("seed", [0, 1, 2, 12345])
def test_plan_round_trips_through_json(seed):
    data = _quickstart(seed).to_dict()
    assert json.loads(json.dumps(data)) == data
