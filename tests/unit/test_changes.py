"""Experiment actions as state transitions (pure): namespace relabelling, merge and delete."""

import os

from testbed.experiment.changes import Apply, Delete, LabelNamespace, apply_action, describe
from testbed.netpol.world import World
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOPO = os.path.join(ROOT, "topologies/three-nodes.yaml")
NGINX = os.path.join(ROOT, "manifests/seed003-nginx.yaml")
POLICY = os.path.join(ROOT, "manifests/seed003-access-nginx.yaml")


def test_label_namespace_reaches_the_policy_world():
    cluster, manifests = load_topology(TOPO), load_manifests([NGINX])
    plan = plan_cluster(cluster, manifests, seed=0)
    manifests, plan = apply_action(LabelNamespace("default", {"team": "a"}), cluster, manifests, plan)
    world = World.from_plan(plan)
    assert world.namespace_labels("default") == {"team": "a", "kubernetes.io/metadata.name": "default"}
    manifests, plan = apply_action(LabelNamespace("default", {"team": None}), cluster, manifests, plan)
    assert World.from_plan(plan).namespace_labels("default") == {"kubernetes.io/metadata.name": "default"}
    assert describe(LabelNamespace("default", {"team": None, "x": "1"})) == "label namespace default team- x=1"


def test_apply_then_delete_a_policy_file():
    cluster, manifests = load_topology(TOPO), load_manifests([NGINX])
    plan = plan_cluster(cluster, manifests, seed=0)
    with_policy, plan2 = apply_action(Apply((POLICY,)), cluster, manifests, plan)
    assert [p.ref.name for p in with_policy.policies] == ["access-nginx"]
    assert plan2.pods == plan.pods  # a policy moves no pod
    without, _ = apply_action(Delete((POLICY,)), cluster, with_policy, plan2)
    assert without.policies == ()
