"""Rolling-update arithmetic and the wishes of a rollout's two ReplicaSets (pure)."""

import os

import pytest

from testbed.experiment.rollout import Rollout, counts, find_deployment, new_template_workload, updated, wishes_between
from testbed.plan.build import plan_cluster, replan
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize(
    "replicas, surge, unavailable, states",
    [
        (3, "25%", "25%", [(3, 0), (3, 1), (2, 1), (2, 2), (1, 2), (1, 3), (0, 3)]),  # one by one (scenario 002)
        (4, "25%", "25%", [(4, 0), (4, 1), (2, 1), (2, 3), (0, 3), (0, 4)]),
        (3, "0", "1", [(3, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2), (0, 3)]),  # never more than 3
        (2, "100%", "0", [(2, 0), (2, 2), (0, 2)]),  # blue/green-like
    ],
)
def test_counts(replicas, surge, unavailable, states):
    got = counts(replicas, surge, unavailable)
    assert got == states
    surge_n = -(-replicas * int(surge[:-1]) // 100) if surge.endswith("%") else int(surge)
    assert all(o + n <= replicas + surge_n for o, n in got)


def test_rollout_then_undo_goes_back_to_the_first_replicaset():
    cluster = load_topology(os.path.join(ROOT, "topologies/three-nodes.yaml"))
    manifests = load_manifests([os.path.join(ROOT, "manifests/services-demo.yaml")])
    plan = plan_cluster(cluster, manifests, seed=4)
    history: dict = {}
    action = Rollout("web", image="nginx:1.28")
    old = find_deployment(manifests, action, "t")
    new = new_template_workload(old, action, history)
    history[("default", "web")] = old.template
    after = updated(manifests, old, new)
    first_rs = {p.owner for p in plan.pods if p.owner.startswith("ReplicaSet/web-")}
    mid = replan(cluster, after, 4, prev=plan, desired=wishes_between(manifests, after, ("default", "web"), 2, 2))
    owners = [p.owner for p in mid.pods if p.owner.startswith("ReplicaSet/web-")]
    assert len(set(owners)) == 2 and owners.count(first_rs.pop()) == 2
    assert sum(p.namespace == "kube-system" for p in mid.pods) == 2  # CoreDNS untouched by the rollout
    undo = new_template_workload(new, Rollout("web", undo=True), history)
    assert undo.template == old.template
    with pytest.raises(Exception, match="no previous revision"):
        new_template_workload(old, Rollout("web", undo=True), {})
