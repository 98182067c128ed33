"""Property tests of plan/scheduling/ (hypothesis): random nodes, random pods with node affinity,
pod (anti-)affinity and topology spread constraints, placed one by one.

The scheduler answers from its indexes (counts by label, node and domain, groups of terms).
A naive oracle here re-derives, from the definitions and by scanning every pod, which nodes a
pod may take. Properties: a placed pod never breaks a required constraint (its own node
affinity, taints, affinity and anti-affinity, the existing pods' anti-affinity, maxSkew of its
DoNotSchedule constraints); a pod left Pending had no feasible node; the same inputs give the
same placements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.plan.scheduler import Scheduler
from testbed.spec.affinity import (
    Affinity,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    PodAffinityTerm,
    TopologySpreadConstraint,
    WeightedPodAffinityTerm,
)
from testbed.spec.model import NodeSpec, PodTemplate, Taint, Toleration
from testbed.spec.selectors import LabelSelector, Requirement

HOST, ZONE = "kubernetes.io/hostname", "topology.kubernetes.io/zone"
TAINTS = (Taint("a", "", "NoSchedule"), Taint("b", "x", "NoExecute"), Taint("c", "", "PreferNoSchedule"))


@st.composite
def nodes(draw):
    out = []
    for i in range(draw(st.integers(2, 5))):
        labels = {HOST: f"n{i}"}
        zone = draw(st.sampled_from(["z1", "z2", "z3", None]))
        if zone:
            labels[ZONE] = zone
        if draw(st.booleans()):
            labels["disk"] = "ssd"
        taints = tuple(t for t in TAINTS if draw(st.integers(0, 3)) == 0)
        out.append(NodeSpec(f"n{i}", "worker", labels, taints))
    return out


selectors = st.sampled_from(
    [
        LabelSelector((("app", "x"),)),
        LabelSelector((("app", "y"),)),
        LabelSelector((), (Requirement("app", "In", ("x", "y")),)),
        LabelSelector((), (Requirement("tier", "Exists"),)),
        LabelSelector(),
    ]
)
keys = st.sampled_from([HOST, ZONE])


@st.composite
def pod_terms(draw):
    namespaces = draw(st.sampled_from([(), ("default",), ("other",), ("default", "other")]))
    return PodAffinityTerm(draw(keys), draw(selectors), namespaces)


@st.composite
def templates(draw):
    labels = {"app": draw(st.sampled_from(["x", "y"]))}
    if draw(st.booleans()):
        labels["tier"] = "1"
    tolerations = tuple(Toleration(t.key, "Exists", "", t.effect) for t in TAINTS[:2] if draw(st.integers(0, 2)) == 0)
    node_required = None
    if draw(st.integers(0, 3)) == 0:
        node_required = (
            NodeSelectorTerm((NodeSelectorRequirement("disk", draw(st.sampled_from(["Exists", "DoesNotExist"]))),)),
        )
    affinity = Affinity(
        node_required,
        pod_required=tuple(draw(st.lists(pod_terms(), max_size=1))),
        anti_required=tuple(draw(st.lists(pod_terms(), max_size=2))),
        anti_preferred=tuple(WeightedPodAffinityTerm(50, t) for t in draw(st.lists(pod_terms(), max_size=1))),
    )
    spread = []
    for key in draw(st.lists(keys, max_size=2, unique=True)):
        spread.append(
            TopologySpreadConstraint(
                draw(st.integers(1, 2)),
                key,
                draw(st.sampled_from(["DoNotSchedule", "ScheduleAnyway"])),
                draw(selectors),
                draw(st.sampled_from([None, 2, 4])),
                draw(st.sampled_from(["Honor", "Ignore"])),
                draw(st.sampled_from(["Honor", "Ignore"])),
            )
        )
    spread = [c if c.when_unsatisfiable == "DoNotSchedule" else _no_min(c) for c in spread]
    return PodTemplate(labels, (), tolerations=tolerations, affinity=affinity, topology_spread=tuple(spread))


def _no_min(c: TopologySpreadConstraint) -> TopologySpreadConstraint:
    return TopologySpreadConstraint(c.max_skew, c.topology_key, c.when_unsatisfiable, c.selector)


# -- the naive oracle: definitions, every pod scanned ---------------------------------------


@dataclass
class Pod:
    namespace: str
    labels: dict
    node: NodeSpec
    template: PodTemplate


def _untolerated(node: NodeSpec, t: PodTemplate) -> bool:
    return any(
        taint.effect in ("NoSchedule", "NoExecute") and not any(x.tolerates(taint) for x in t.tolerations)
        for taint in node.taints
    )


def _node_affinity(node: NodeSpec, t: PodTemplate) -> bool:
    required = t.affinity.node_required if t.affinity else None
    return all(node.labels.get(k) == v for k, v in t.node_selector.items()) and (
        required is None or any(term.matches(node.name, node.labels) for term in required)
    )


def _term_matches(term: PodAffinityTerm, owner_ns: str, pod_ns: str, labels: dict) -> bool:
    namespaces = term.namespaces or (owner_ns,)
    return term.selector is not None and pod_ns in namespaces and term.selector.matches(labels)


def _same_domain(key: str, a: NodeSpec, b: NodeSpec) -> bool:
    return key in a.labels and key in b.labels and a.labels[key] == b.labels[key]


def feasible(node: NodeSpec, t: PodTemplate, ns: str, placed: list[Pod], all_nodes: list[NodeSpec]) -> bool:
    if _untolerated(node, t) or not _node_affinity(node, t):
        return False
    hard = [c for c in t.topology_spread if c.when_unsatisfiable == "DoNotSchedule"]
    for c in hard:
        if c.topology_key not in node.labels:
            return False
        counting = c.selector is not None and not c.selector.is_empty()
        domains: dict[str, int] = {}
        for m in all_nodes:
            if any(h.topology_key not in m.labels for h in hard):
                continue
            if c.node_affinity_policy == "Honor" and not _node_affinity(m, t):
                continue
            if c.node_taints_policy == "Honor" and _untolerated(m, t):
                continue
            value = m.labels[c.topology_key]
            n = sum(
                1 for p in placed if p.node is m and p.namespace == ns and counting and c.selector.matches(p.labels)
            )
            domains[value] = domains.get(value, 0) + n
        low = (0 if len(domains) < (c.min_domains or 1) else min(domains.values())) if domains else math.inf
        own = int(c.selector is not None and c.selector.matches(t.labels))
        if domains.get(node.labels[c.topology_key], 0) + own - low > c.max_skew:
            return False
    aff = t.affinity or Affinity()
    if aff.pod_required:
        if any(term.topology_key not in node.labels for term in aff.pod_required):
            return False
        matching = [p for p in placed if all(_term_matches(x, ns, p.namespace, p.labels) for x in aff.pod_required)]
        near = all(any(_same_domain(x.topology_key, p.node, node) for p in matching) for x in aff.pod_required)
        anywhere = any(x.topology_key in p.node.labels for p in matching for x in aff.pod_required)
        self_match = all(_term_matches(x, ns, ns, t.labels) for x in aff.pod_required)
        if not near and (anywhere or not self_match):
            return False
    for term in aff.anti_required:
        if any(
            _same_domain(term.topology_key, p.node, node)
            for p in placed
            if _term_matches(term, ns, p.namespace, p.labels)
        ):
            return False
    for p in placed:
        for term in (p.template.affinity or Affinity()).anti_required:
            if _term_matches(term, p.namespace, ns, t.labels) and _same_domain(term.topology_key, p.node, node):
                return False
    return True


# -- the properties -------------------------------------------------------------------------


def _run(cluster, pods):
    sched = Scheduler(cluster, {"other": {}})
    placed: list[Pod] = []
    out = []
    for template, ns in pods:
        prepared = sched.prepare(template, ns)
        node, why = sched.schedule(prepared)
        possible = [n.name for n in cluster if feasible(n, template, ns, placed, cluster)]
        if node is None:
            assert not possible, (why, possible)
            assert why.startswith(f"0/{len(cluster)} nodes are available: ")
        else:
            assert node in possible, (node, possible)
            sched.bind(prepared, node)
            placed.append(Pod(ns, dict(template.labels), next(n for n in cluster if n.name == node), template))
        out.append(node)
    return out


@st.composite
def workloads(draw):
    """Pods drawn from a few templates, as replicas of a few controllers are."""
    pool = draw(st.lists(st.tuples(templates(), st.sampled_from(["default", "other"])), min_size=1, max_size=3))
    return draw(st.lists(st.sampled_from(pool), min_size=1, max_size=12))


@settings(max_examples=300, deadline=None)
@given(nodes(), workloads())
def test_placements_keep_every_required_constraint_and_pending_means_no_node_fits(cluster, pods):
    first = _run(cluster, pods)
    assert _run(cluster, pods) == first  # deterministic


@settings(max_examples=100, deadline=None)
@given(nodes(), st.integers(1, 3), keys, st.integers(2, 14))
def test_do_not_schedule_spread_holds_the_max_skew(cluster, skew, key, replicas):
    sel = LabelSelector((("app", "x"),))
    template = PodTemplate(
        {"app": "x"},
        (),
        tolerations=(Toleration("", "Exists"),),
        topology_spread=(TopologySpreadConstraint(skew, key, "DoNotSchedule", sel),),
    )
    sched = Scheduler(cluster)
    prepared = sched.prepare(template)
    counts: dict[str, int] = {}
    for _ in range(replicas):
        node, _why = sched.schedule(prepared)
        if node is None:
            continue
        sched.bind(prepared, node)
        domain = next(n for n in cluster if n.name == node).labels[key]
        counts[domain] = counts.get(domain, 0) + 1
    domains = {n.labels[key] for n in cluster if key in n.labels}
    if domains:
        assert max(counts.values(), default=0) - min(counts.get(d, 0) for d in domains) <= skew
    else:
        assert not counts  # no node has the key: nothing is placed
