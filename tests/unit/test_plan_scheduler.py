"""Pod placement (plan/scheduler.py through plan_cluster): taints, tolerations, nodeName,
nodeSelector, even spreading, Pending pods with a reason."""

from __future__ import annotations

from collections import Counter

import pytest

from testbed.plan.scheduler import schedule, unfit_reason
from testbed.spec.model import NodeSpec, PodTemplate, Taint, Toleration

from ._yaml import deployment as _deployment

THREE_NODES = """
    kind: Cluster
    apiVersion: kind.x-k8s.io/v1alpha4
    nodes:
      - role: control-plane
      - role: worker
        labels: {disk: ssd}
      - role: worker
"""
SINGLE_NODE = """
    kind: Cluster
    apiVersion: kind.x-k8s.io/v1alpha4
"""


def _pod(name: str, pod_spec: str = "") -> str:
    return f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: {name}}}
        spec:
          containers: [{{name: app}}]
          {pod_spec}
    """


def _spread(plan) -> dict[str, int]:
    counts = Counter(p.node for p in plan.pods)
    return {n.name: counts.get(n.name, 0) for n in plan.nodes}


def test_replicas_spread_evenly_over_workers(plan_of):
    plan = plan_of(THREE_NODES, _deployment(6))
    assert _spread(plan) == {"kind-control-plane": 0, "kind-worker": 3, "kind-worker2": 3}
    assert plan.warnings == ()


def test_odd_replicas_fill_earlier_nodes_first(plan_of):
    plan = plan_of(THREE_NODES, _deployment(5))
    assert _spread(plan) == {"kind-control-plane": 0, "kind-worker": 3, "kind-worker2": 2}
    # round robin: worker, worker2, worker, ...
    assert [p.node for p in plan.pods] == ["kind-worker", "kind-worker2"] * 2 + ["kind-worker"]


def test_spreading_counts_pods_already_placed(plan_of):
    plan = plan_of(THREE_NODES, _pod("pinned", "nodeName: kind-worker"), _deployment(3))
    assert _spread(plan) == {"kind-control-plane": 0, "kind-worker": 2, "kind-worker2": 2}


def test_control_plane_taint_is_respected(plan_of):
    plan = plan_of(THREE_NODES, _deployment(4))
    assert plan.pods_on("kind-control-plane") == ()


@pytest.mark.parametrize(
    "toleration",
    [
        "{operator: Exists}",
        "{key: node-role.kubernetes.io/control-plane, operator: Exists}",
        "{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}",
        "{key: node-role.kubernetes.io/control-plane, operator: Equal, value: '', effect: NoSchedule}",
    ],
)
def test_tolerated_control_plane_taint(plan_of, toleration):
    plan = plan_of(THREE_NODES, _deployment(3, f"tolerations: [{toleration}]"))
    assert _spread(plan) == {"kind-control-plane": 1, "kind-worker": 1, "kind-worker2": 1}


@pytest.mark.parametrize(
    "toleration",
    [
        "{key: node-role.kubernetes.io/master, operator: Exists}",
        "{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoExecute}",
        "{key: node-role.kubernetes.io/control-plane, operator: Equal, value: 'true'}",
    ],
)
def test_tolerations_that_do_not_match(plan_of, toleration):
    plan = plan_of(THREE_NODES, _deployment(3, f"tolerations: [{toleration}]"))
    assert _spread(plan)["kind-control-plane"] == 0


def test_node_name_is_honoured_even_on_a_tainted_node(plan_of):
    plan = plan_of(
        THREE_NODES, _deployment(2, "nodeName: kind-control-plane"), _pod("on-worker2", "nodeName: kind-worker2")
    )
    assert _spread(plan) == {"kind-control-plane": 2, "kind-worker": 0, "kind-worker2": 1}
    assert plan.find_pod("on-worker2").node == "kind-worker2"
    assert plan.warnings == ()


def test_unknown_node_name_leaves_the_pod_pending_with_a_warning(plan_of):
    plan = plan_of(THREE_NODES, _pod("lost", "nodeName: kind-worker9"), _pod("fine"))
    assert [p.name for p in plan.pods] == ["fine"]
    assert plan.find_pod("lost") is None
    assert plan.warnings == ("pod default/lost stays Pending: nodeName 'kind-worker9' is not a node of this cluster",)


def test_node_selector_is_honoured(plan_of):
    plan = plan_of(THREE_NODES, _deployment(4, "nodeSelector: {disk: ssd}"))
    assert _spread(plan) == {"kind-control-plane": 0, "kind-worker": 4, "kind-worker2": 0}


def test_node_selector_on_hostname(plan_of):
    plan = plan_of(THREE_NODES, _deployment(2, "nodeSelector: {kubernetes.io/hostname: kind-worker2}"))
    assert _spread(plan) == {"kind-control-plane": 0, "kind-worker": 0, "kind-worker2": 2}


def test_node_selector_and_taint_together(plan_of):
    plan = plan_of(THREE_NODES, _deployment(1, "nodeSelector: {node-role.kubernetes.io/control-plane: ''}"))
    assert plan.pods == ()
    (warning,) = plan.warnings
    assert warning.startswith("pod default/web-")
    assert warning.endswith(
        " stays Pending: 0/3 nodes are available: "
        "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )
    tolerated = plan_of(
        THREE_NODES,
        _deployment(
            1,
            "nodeSelector: {node-role.kubernetes.io/control-plane: ''}\n"
            "              tolerations: [{operator: Exists}]",
        ),
    )
    assert _spread(tolerated) == {"kind-control-plane": 1, "kind-worker": 0, "kind-worker2": 0}


def test_no_matching_node_leaves_every_replica_pending(plan_of):
    plan = plan_of(THREE_NODES, _deployment(3, "nodeSelector: {disk: nvme}"))
    assert plan.pods == ()
    assert len(plan.warnings) == 3
    assert all(
        w.endswith(
            " stays Pending: 0/3 nodes are available: 1 node(s) had untolerated taint "
            "{node-role.kubernetes.io/control-plane: }, 2 node(s) didn't match Pod's node affinity/selector. "
            "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        )
        for w in plan.warnings
    )


def test_single_node_cluster_schedules_on_the_control_plane(plan_of):
    plan = plan_of(SINGLE_NODE, _deployment(3), _pod("solo"))
    assert _spread(plan) == {"kind-control-plane": 4}
    assert plan.warnings == ()


def test_zero_replicas_make_no_pods(plan_of):
    plan = plan_of(THREE_NODES, _deployment(0))
    assert plan.pods == () and plan.warnings == ()


# -- the scheduler function on its own -----------------------------------------------------


def _node(name: str, taints=(), **labels) -> NodeSpec:
    return NodeSpec(name, "worker", {"kubernetes.io/hostname": name, **labels}, tuple(taints))


def test_prefer_no_schedule_only_lowers_the_score():
    soft = Taint("maintenance", "", "PreferNoSchedule")
    nodes = [_node("a", [soft]), _node("b")]
    template = PodTemplate({}, ())
    assert unfit_reason(nodes[0], template) is None
    assert schedule(template, nodes, {"a": 0, "b": 5}) == ("b", "")
    # ... unless every fitting node prefers not to
    assert schedule(template, [nodes[0]], {}) == ("a", "")


def test_no_execute_taint_filters_and_can_be_tolerated():
    hard = Taint("dedicated", "gpu", "NoExecute")
    nodes = [_node("a", [hard])]
    assert schedule(PodTemplate({}, ()), nodes, {}) == (
        None,
        "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}. "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
    )
    tolerant = PodTemplate({}, (), tolerations=(Toleration("dedicated", "Equal", "gpu", "NoExecute"),))
    assert schedule(tolerant, nodes, {}) == ("a", "")


def test_ties_go_to_the_earlier_node():
    nodes = [_node("a"), _node("b"), _node("c")]
    assert schedule(PodTemplate({}, ()), nodes, {"a": 1, "b": 0, "c": 0}) == ("b", "")
