"""kube-scheduler's constraints through plan_cluster (plan/scheduling/): node affinity, pod
(anti-)affinity, topology spread, NoExecute taints, and the Pending reasons in its own words."""

from __future__ import annotations

from collections import Counter

import pytest

from testbed.errors import SpecError
from testbed.plan.scheduler import Scheduler, eligible, eviction, unfit_reason
from testbed.spec.affinity import NodeSelectorRequirement
from testbed.spec.model import NodeSpec, PodTemplate, Taint, Toleration

from ._yaml import deployment, kind_cluster

THREE_NODES = kind_cluster(2)
# two racks (zones): control plane and worker in rack1, worker2 and worker3 in rack2
RACKS = kind_cluster(
    3,
    """
    underlay:
      subnets: [{name: rack1, cidr: 192.168.1.0/24}, {name: rack2, cidr: 192.168.2.0/24}]
    nodes: [{name: kind-worker2, rack: rack2}, {name: kind-worker3, rack: rack2}]
    routing: cloud-routes
    """,
)
ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"


def _pod(name: str, labels: str = "{}", spec: str = "", namespace: str = "default") -> str:
    return f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: {name}, namespace: {namespace}, labels: {labels}}}
        spec:
          containers: [{{name: app}}]
          {spec}
    """


def _spread(plan, prefix: str = "web-") -> dict[str, int]:
    counts = Counter(p.node for p in plan.pods if p.name.startswith(prefix))
    return {n.name: counts.get(n.name, 0) for n in plan.nodes}


def _anti(key: str, kind: str = "podAntiAffinity") -> str:
    return (
        f"affinity: {{{kind}: {{requiredDuringSchedulingIgnoredDuringExecution: "
        f"[{{labelSelector: {{matchLabels: {{app: web}}}}, topologyKey: {key}}}]}}}}"
    )


# -- node affinity ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression, where",
    [
        ("{key: disk, operator: In, values: [ssd]}", ["kind-worker"]),
        ("{key: disk, operator: NotIn, values: [ssd]}", ["kind-worker2"]),
        ("{key: disk, operator: Exists}", ["kind-worker"]),
        ("{key: disk, operator: DoesNotExist}", ["kind-worker2"]),
        ("{key: cores, operator: Gt, values: ['8']}", ["kind-worker2"]),
        ("{key: cores, operator: Lt, values: ['8']}", ["kind-worker"]),
    ],
)
def test_required_node_affinity_operators(plan_of, expression, where):
    cluster = (
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n"
        "  - {role: worker, labels: {disk: ssd, cores: '4'}}\n  - {role: worker, labels: {cores: '16'}}\n"
    )
    affinity = (
        "affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: "
        f"{{nodeSelectorTerms: [{{matchExpressions: [{expression}]}}]}}}}}}"
    )
    plan = plan_of(cluster, deployment(3, affinity))
    assert sorted({p.node for p in plan.pods}) == where and len(plan.pods) == 3


def test_node_selector_terms_are_ored_and_expressions_anded(plan_of):
    affinity = (
        "affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: ["
        "{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [kind-worker]}, "
        "{key: kubernetes.io/os, operator: In, values: [windows]}]}, "
        "{matchFields: [{key: metadata.name, operator: In, values: [kind-worker2]}]}]}}}"
    )
    plan = plan_of(THREE_NODES, deployment(3, affinity))
    assert _spread(plan) == {"kind-control-plane": 0, "kind-worker": 0, "kind-worker2": 3}


def test_match_fields_narrow_the_nodes_evaluated(plan_of):
    # the DaemonSet idiom: nodes outside `metadata.name In` are filtered out by PreFilter
    affinity = (
        "affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: ["
        "{matchFields: [{key: metadata.name, operator: In, values: [kind-control-plane]}]}]}}}"
    )
    plan = plan_of(THREE_NODES, _pod("pinned", spec=affinity))
    assert plan.pods == ()
    assert plan.pending[0].reason == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 node is filtered out by the prefilter result. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )


def test_preferred_node_affinity_weights_choose(plan_of):
    cluster = (
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n"
        "  - {role: worker, labels: {disk: ssd}}\n  - {role: worker, labels: {gpu: 'yes'}}\n"
    )
    prefer = (
        "affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: ["
        "{weight: 10, preference: {matchExpressions: [{key: disk, operator: Exists}]}}, "
        "{weight: 90, preference: {matchExpressions: [{key: gpu, operator: Exists}]}}]}}"
    )
    plan = plan_of(cluster, _pod("one", spec=prefer))
    assert plan.find_pod("one").node == "kind-worker2"


# -- pod anti-affinity and affinity --------------------------------------------------------


def test_anti_affinity_on_hostname_puts_one_replica_per_node(plan_of):
    plan = plan_of(THREE_NODES, deployment(3, _anti(HOST)))
    assert _spread(plan) == {"kind-control-plane": 0, "kind-worker": 1, "kind-worker2": 1}
    (pending,) = plan.pending
    assert pending.reason == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are available: "
        "1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
    )
    assert any(w.endswith("stays Pending: " + pending.reason) for w in plan.warnings)


def test_anti_affinity_on_zone_spreads_replicas_across_racks(plan_of):
    plan = plan_of(RACKS, deployment(3, _anti(ZONE)))
    racks = {p.node: plan.find_pod(p.name) for p in plan.pods}
    assert len(plan.pods) == 2
    zones = {n.name: n.labels[ZONE] for n in plan.nodes}
    assert sorted(zones[p.node] for p in plan.pods) == ["rack1", "rack2"] and racks
    assert plan.pending[0].reason == (
        "0/4 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "3 node(s) didn't match pod anti-affinity rules. preemption: 0/4 nodes are available: "
        "1 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod."
    )


def test_existing_pods_anti_affinity_is_symmetric(plan_of):
    plan = plan_of(THREE_NODES, _pod("loner", "{role: loner}", _anti(HOST)), deployment(2))
    loner = plan.find_pod("loner")
    assert loner is not None
    # the web pods match loner's anti-affinity term: they keep off its node
    assert all(p.node != loner.node for p in plan.pods if p.name.startswith("web-"))
    assert len(plan.pending) == 0 and _spread(plan)[loner.node] == 0


def test_pod_affinity_follows_its_target_and_self_affinity_starts_a_group(plan_of):
    target = _pod("db", "{app: db}", "nodeName: kind-worker2")
    follow = (
        "affinity: {podAffinity: {requiredDuringSchedulingIgnoredDuringExecution: "
        "[{labelSelector: {matchLabels: {app: db}}, topologyKey: kubernetes.io/hostname}]}}"
    )
    plan = plan_of(THREE_NODES, target, deployment(3, follow))
    assert _spread(plan) == {"kind-control-plane": 0, "kind-worker": 0, "kind-worker2": 3}
    alone = plan_of(THREE_NODES, deployment(3, follow))
    assert alone.pods == () and alone.pending[0].reason == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 node(s) didn't match pod affinity rules. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )
    together = plan_of(THREE_NODES, deployment(3, _anti(HOST, "podAffinity")))
    assert sorted(_spread(together).values()) == [0, 0, 3]  # the first pod matches itself


def test_preferred_anti_affinity_spreads_without_pending(plan_of):
    prefer = (
        "affinity: {podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 100, "
        "podAffinityTerm: {labelSelector: {matchLabels: {app: web}}, topologyKey: topology.kubernetes.io/zone}}]}}"
    )
    plan = plan_of(RACKS, deployment(4, prefer))
    zones = Counter(next(n.labels[ZONE] for n in plan.nodes if n.name == p.node) for p in plan.pods)
    assert zones == {"rack1": 2, "rack2": 2} and plan.pending == ()


def test_namespaces_and_namespace_selector(plan_of):
    ns = """
        apiVersion: v1
        kind: Namespace
        metadata: {name: team, labels: {tier: back}}
    """
    other = _pod("other", "{app: web}", "nodeName: kind-worker", namespace="team")
    on_worker = "nodeSelector: {kubernetes.io/hostname: kind-worker}\n          "
    own_ns = _pod("mine", "{}", on_worker + _anti(HOST))
    listed = _pod("listed", "{}", on_worker + _anti(HOST).replace("topologyKey", "namespaces: [team], topologyKey"))
    by_label = _pod(
        "by-label",
        "{}",
        on_worker + _anti(HOST).replace("topologyKey", "namespaceSelector: {matchLabels: {tier: back}}, topologyKey"),
    )
    every = _pod("every", "{}", on_worker + _anti(HOST).replace("topologyKey", "namespaceSelector: {}, topologyKey"))
    plan = plan_of(THREE_NODES, ns, other, own_ns, listed, by_label, every)
    assert plan.find_pod("mine").node == "kind-worker"  # the term looks in its own namespace only
    assert sorted(p.name for p in plan.pending) == ["by-label", "every", "listed"]


def test_match_label_keys_select_the_same_revision(plan_of):
    # anti-affinity on pods of the same pod-template-hash only: one ReplicaSet spreads, another
    # Deployment with the same app label is not held back by it
    term = (
        "affinity: {podAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{labelSelector: "
        "{matchLabels: {app: web}}, matchLabelKeys: [pod-template-hash], topologyKey: kubernetes.io/hostname}]}}"
    )
    other = (
        deployment(2, term)
        .replace("name: web}", "name: web2}")
        .replace("labels: {app: web}", "labels: {app: web, v: b}")
    )
    plan = plan_of(THREE_NODES, deployment(2, term), other)
    assert len(plan.pods) == 4 and plan.pending == ()


# -- topology spread -----------------------------------------------------------------------


def _tsc(key: str, skew: int = 1, when: str = "DoNotSchedule", extra: str = "") -> str:
    return (
        f"topologySpreadConstraints: [{{maxSkew: {skew}, topologyKey: {key}, whenUnsatisfiable: {when}, "
        f"labelSelector: {{matchLabels: {{app: web}}}}{extra}}}]"
    )


def test_spread_over_zones_respects_max_skew(plan_of):
    plan = plan_of(RACKS, deployment(6, _tsc(ZONE)))
    zones = Counter(next(n.labels[ZONE] for n in plan.nodes if n.name == p.node) for p in plan.pods)
    assert zones == {"rack1": 3, "rack2": 3}


def test_tainted_control_plane_counts_as_a_domain_unless_taints_are_honoured(plan_of):
    # nodeTaintsPolicy Ignore (the default): the control plane is a hostname domain holding 0
    # pods, so with maxSkew 1 each worker takes one pod and the rest wait
    plan = plan_of(THREE_NODES, deployment(4, _tsc(HOST)))
    assert _spread(plan) == {"kind-control-plane": 0, "kind-worker": 1, "kind-worker2": 1}
    assert plan.pending[0].reason == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 node(s) didn't match pod topology spread constraints. preemption: 0/3 nodes are available: "
        "1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
    )
    honour = plan_of(THREE_NODES, deployment(4, _tsc(HOST, extra=", nodeTaintsPolicy: Honor")))
    assert _spread(honour) == {"kind-control-plane": 0, "kind-worker": 2, "kind-worker2": 2}


def test_min_domains_and_missing_labels(plan_of):
    # two zones but minDomains 3: the global minimum is 0, so each zone holds at most maxSkew
    plan = plan_of(RACKS, deployment(4, _tsc(ZONE, extra=", minDomains: 3")))
    assert len(plan.pods) == 2
    missing = plan_of(THREE_NODES, deployment(1, _tsc("example.com/rack")))
    assert missing.pending[0].reason == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 node(s) didn't match pod topology spread constraints (missing required label). "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )


def test_schedule_anyway_never_leaves_pods_pending(plan_of):
    plan = plan_of(THREE_NODES, deployment(5, _tsc(HOST, when="ScheduleAnyway")))
    assert sorted(_spread(plan).values()) == [0, 2, 3] and plan.pending == ()


def test_default_spreading_follows_the_replica_set_not_the_node_load(plan_of):
    # kind-worker carries 3 unrelated pods; the Deployment's replicas still spread 1 / 1
    busy = [_pod(f"busy{i}", "{app: other}", "nodeName: kind-worker") for i in range(3)]
    plan = plan_of(THREE_NODES, *busy, deployment(2))
    assert _spread(plan) == {"kind-control-plane": 0, "kind-worker": 1, "kind-worker2": 1}


# -- taints ---------------------------------------------------------------------------------


def _node(name: str, *taints: Taint, **labels: str) -> NodeSpec:
    return NodeSpec(name, "worker", {HOST: name, **labels}, taints)


def test_no_execute_toleration_seconds_evicts_after_that_time():
    hard = Taint("maintenance", "soon", "NoExecute")
    node = _node("a", hard)
    timed = PodTemplate({}, (), tolerations=(Toleration("maintenance", "Exists", "", "NoExecute", 300),))
    forever = PodTemplate({}, (), tolerations=(Toleration("maintenance", "Exists", "", "NoExecute"),))
    assert eviction(node, timed).after == 300 and eviction(node, forever) is None
    assert eviction(node, PodTemplate({}, ())).after == 0
    assert eviction(_node("b"), PodTemplate({}, ())) is None
    assert eligible(node, timed) and not eligible(node, PodTemplate({}, ()))
    assert unfit_reason(node, PodTemplate({}, ())) == "node(s) had untolerated taint {maintenance: soon}"


def test_daemonset_eligibility_is_selector_affinity_and_taints():
    cp = NodeSpec(
        "cp", "control-plane", {HOST: "cp"}, (Taint("node-role.kubernetes.io/control-plane", "", "NoSchedule"),)
    )
    worker = _node("w", disk="ssd")
    plain = PodTemplate({}, ())
    assert [eligible(n, plain) for n in (cp, worker)] == [False, True]
    tolerant = PodTemplate({}, (), tolerations=(Toleration("node-role.kubernetes.io/control-plane", "Exists"),))
    assert [eligible(n, tolerant) for n in (cp, worker)] == [True, True]
    selective = PodTemplate({}, (), node_selector={"disk": "ssd"}, tolerations=tolerant.tolerations)
    assert [eligible(n, selective) for n in (cp, worker)] == [False, True]


def test_scheduler_directly_counts_pods_by_label_and_domain():
    nodes = [_node("a", zone="z1"), _node("b", zone="z1"), _node("c", zone="z2")]
    sched = Scheduler(nodes)
    web = PodTemplate({"app": "web"}, ())
    prepared = sched.prepare(web)
    sched.bind(prepared, "a")
    assert dict(sched.index.load) == {"a": 1, "b": 0, "c": 0}
    assert sched.schedule(prepared) == ("b", "")  # fewest pods


@pytest.mark.parametrize(
    "op, values, label, result",
    [
        ("Gt", ("3",), "4", True),
        ("Gt", ("3",), "3", False),
        ("Lt", ("3",), "-1", True),
        ("Gt", ("3",), "x", False),
        ("In", ("a", "b"), None, False),
        ("NotIn", ("a",), None, True),
        ("DoesNotExist", (), "", False),
    ],
)
def test_node_selector_requirement(op, values, label, result):
    assert NodeSelectorRequirement("k", op, values).matches(label) is result


def test_pod_without_the_new_fields_keeps_its_name(plan_of):
    # fields added to PodTemplate for scheduling leave the pod-template-hash of older manifests alone
    plan = plan_of(THREE_NODES, deployment(1))
    assert plan.pods[0].owner == "ReplicaSet/web-856bbd547c"  # as before the fields existed


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pod_spec, field, message",
    [
        (
            "affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: []}}}",
            "nodeSelectorTerms",
            "must have at least one node selector term",
        ),
        (
            "affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: "
            "[{matchExpressions: [{key: a, operator: Gt, values: [x]}]}]}}}",
            "values",
            "'x' is not an integer",
        ),
        (
            "affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: "
            "[{matchFields: [{key: metadata.labels, operator: In, values: [x]}]}]}}}",
            "key",
            "not a valid field selector key",
        ),
        (
            "affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: "
            "[{weight: 101, preference: {matchExpressions: [{key: a, operator: Exists}]}}]}}",
            "weight",
            "out of range",
        ),
        (
            "affinity: {podAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: "
            "[{labelSelector: {matchLabels: {app: web}}}]}}",
            "topologyKey",
            "can not be empty",
        ),
        (
            "topologySpreadConstraints: [{maxSkew: 0, topologyKey: a, whenUnsatisfiable: DoNotSchedule}]",
            "maxSkew",
            "greater than zero",
        ),
        (
            "topologySpreadConstraints: [{maxSkew: 1, topologyKey: a, whenUnsatisfiable: Maybe}]",
            "whenUnsatisfiable",
            "Unsupported value",
        ),
        (
            "topologySpreadConstraints: [{maxSkew: 1, topologyKey: a, whenUnsatisfiable: ScheduleAnyway, minDomains: 2}]",
            "minDomains",
            "whenUnsatisfiable=DoNotSchedule",
        ),
        (
            "topologySpreadConstraints: [{maxSkew: 1, topologyKey: a, whenUnsatisfiable: DoNotSchedule}, "
            "{maxSkew: 2, topologyKey: a, whenUnsatisfiable: DoNotSchedule}]",
            "topologyKey",
            "Duplicate value",
        ),
        ("tolerations: [{key: a, operator: Exists, effect: NoSchedule, tolerationSeconds: 5}]", "effect", "NoExecute"),
        ("affinity: {podAffinty: {}}", "podAffinty", "unknown field"),
    ],
)
def test_bad_scheduling_fields_are_one_line_errors(manifests, pod_spec, field, message):
    with pytest.raises(SpecError) as err:
        manifests(deployment(1, pod_spec))
    (problem,) = err.value.problems
    assert problem.path.endswith(field) and message in problem.message, problem


TAINTED = kind_cluster(
    2,
    """
    nodes:
      - name: kind-worker2
        taints: [{key: maintenance, value: soon, effect: NoExecute}, {key: gpu, effect: PreferNoSchedule}]
    """,
)


def test_topology_taints_filter_score_and_evict(plan_of):
    timed = "tolerations: [{key: maintenance, operator: Exists, effect: NoExecute, tolerationSeconds: 300}]"
    plan = plan_of(
        TAINTED,
        deployment(2),  # no toleration: both on kind-worker
        _pod("pinned", spec="nodeName: kind-worker2"),  # bypasses the scheduler, not the taint manager
        _pod("timed", spec=timed + "\n          nodeSelector: {kubernetes.io/hostname: kind-worker2}"),
    )
    assert _spread(plan) == {"kind-control-plane": 0, "kind-worker": 2, "kind-worker2": 0}
    assert plan.find_pod("pinned") is None and plan.find_pod("timed").node == "kind-worker2"
    assert (
        "pod default/pinned on kind-worker2: the taint manager evicts it at once: taint {maintenance: soon} "
        "(NoExecute) is not tolerated" in plan.warnings
    )
    assert any("timed on kind-worker2: the taint manager evicts it after 300 s" in w for w in plan.warnings)
    node = next(n for n in plan.nodes if n.name == "kind-worker2")
    assert node.taints == ("maintenance:NoExecute", "gpu:PreferNoSchedule")


def test_prefer_no_schedule_from_the_topology_outweighs_spreading(plan_of):
    tolerate = "tolerations: [{key: maintenance, operator: Exists}]"
    only = "\n          nodeSelector: {kubernetes.io/hostname: kind-worker2}"
    plan = plan_of(TAINTED, deployment(2, tolerate), _pod("there", spec=tolerate + only))
    # kind-worker2 is tolerated but carries an intolerable PreferNoSchedule taint: TaintToleration
    # (weight 3) outweighs the replicas' spreading (weight 2); it only lowers the score, though
    assert _spread(plan) == {"kind-control-plane": 0, "kind-worker": 2, "kind-worker2": 0}
    assert plan.find_pod("there").node == "kind-worker2"


@pytest.mark.parametrize(
    "taint, field, message",
    [
        ("{key: a, effect: NoRun}", "effect", "must be one of NoSchedule"),
        ("{key: 'bad key', effect: NoSchedule}", "key", "not a valid qualified name"),
        ("{value: x, effect: NoSchedule}", "key", "required field is missing"),
    ],
)
def test_bad_topology_taints(topology, taint, field, message):
    with pytest.raises(SpecError) as err:
        topology(kind_cluster(1, f"nodes: [{{name: kind-worker, taints: [{taint}]}}]"))
    (problem,) = err.value.problems
    assert problem.path.endswith(field) and message in problem.message, problem
