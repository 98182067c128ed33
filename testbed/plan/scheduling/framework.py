"""One scheduling cycle as kube-scheduler's framework runs it (pure; plan/scheduling/).

Filter every node with the default profile's filters in order (the first failing plugin gives
the node's reason), score the feasible ones with the default weights, bind to the best (ties to
the earlier node: deterministic, where kube-scheduler picks at random). A pod no node takes
gets kube-scheduler's FitError message, preemption's verdict included ("Preemption is not
helpful for scheduling" where the failure is unresolvable; "No preemption victims found" where
removing pods could help but every pod has the same priority, as here).

Resources: pods here declare no requests, so kube-scheduler counts each at its non-zero default
(100m CPU, 200 MiB); on nodes of equal size BalancedAllocation is equal everywhere and
NodeResourcesFit's LeastAllocated favours the node with fewer pods. It is scored as
100 × (1 − pods/110) (kubelet's default pod capacity), kept exact so one pod always tips a tie.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ...spec.model import NodeSpec, PodTemplate
from ...spec.selectors import LabelSelector
from ..pod import HostPortPlan
from .index import Placed, PodIndex
from .interpod import InterPodFilter, interpod_scores
from .nodes import CONFLICT_REASON, PREFILTERED_REASON, affinity_scores, node_filter, prefilter_names, taint_scores
from .ports import NO_FREE_PORTS, conflicts, host_ports
from .spread import Spread, SpreadFilter, resolve, spread_scores
from .terms import PodTerms, namespace_labels, resolve_pod_terms

NOMINAL_PODS = 110  # kubelet's default --max-pods: the size of a node in the resource score
WEIGHTS = {"TaintToleration": 3, "NodeAffinity": 2, "PodTopologySpread": 2, "InterPodAffinity": 2}
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"


@dataclass(frozen=True)
class Prepared:
    """A pod template resolved for one namespace and label set: what every pod of it shares."""

    template: PodTemplate
    namespace: str
    labels: Mapping[str, str]
    terms: PodTerms
    spread: Spread
    names: frozenset[str] | None  # NodeAffinity's PreFilter result (None: every node)
    static: tuple[str | None, ...]  # per node: the TaintToleration / NodeAffinity reason
    host_ports: tuple[HostPortPlan, ...] = ()  # what NodePorts checks (plan/scheduling/ports.py)


def fit_error(statuses: Sequence[tuple[str, bool]]) -> str:
    """framework.FitError's message with DefaultPreemption's verdict, for (reason, resolvable) per node."""
    n = len(statuses)
    reasons = Counter(r for r, _ in statuses)
    preemption = Counter(NO_VICTIMS if ok else NOT_HELPFUL for _, ok in statuses)

    def histogram(counts: Counter[str]) -> str:
        return ", ".join(sorted(f"{c} {r}" for r, c in counts.items()))

    return (
        f"0/{n} nodes are available: {histogram(reasons)}. "
        f"preemption: 0/{n} nodes are available: {histogram(preemption)}."
    )


class Scheduler:
    """kube-scheduler over a fixed set of nodes; pods are placed one at a time with `bind`."""

    def __init__(self, nodes: Sequence[NodeSpec], namespaces: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.nodes = tuple(nodes)
        self.node_labels = {n.name: n.labels for n in self.nodes}
        self.ns_labels = namespace_labels(namespaces or {})
        self.index = PodIndex([n.name for n in self.nodes])
        self.ports: dict[str, list[HostPortPlan]] = {}  # node -> the hostPorts its pods hold

    def prepare(
        self,
        template: PodTemplate,
        namespace: str = "default",
        labels: Mapping[str, str] | None = None,
        default_selector: LabelSelector | None = None,
    ) -> Prepared:
        """`labels`: the pods' labels (default: the template's); `default_selector`: what the
        Services and the controller selecting these pods select (the default spreading)."""
        labels = template.labels if labels is None else labels
        return Prepared(
            template,
            namespace,
            labels,
            resolve_pod_terms(template.affinity, namespace, labels, self.ns_labels),
            resolve(template, namespace, labels, default_selector),
            prefilter_names(template),
            tuple(node_filter(n, template) for n in self.nodes),
            host_ports(template),
        )

    def bind(self, pod: Prepared, node: str) -> None:
        """A pod of `pod` now runs on `node`."""
        self.index.add(Placed(pod.namespace, pod.labels, node, pod.terms))
        if pod.host_ports:
            self.ports.setdefault(node, []).extend(pod.host_ports)

    def add(self, template: PodTemplate, namespace: str, labels: Mapping[str, str], node: str) -> None:
        """A pod already running (kept from the previous plan), with its own current labels."""
        terms = resolve_pod_terms(template.affinity, namespace, labels, self.ns_labels)
        self.index.add(Placed(namespace, labels, node, terms))
        if host_ports(template):
            self.ports.setdefault(node, []).extend(host_ports(template))

    def schedule(self, pod: Prepared) -> tuple[str | None, str]:
        """(node, "") or (None, why the pod stays Pending, in kube-scheduler's words)."""
        template = pod.template
        if template.node_name:
            # spec.nodeName skips the scheduler entirely: the kubelet admits it, taints or not,
            # but not onto ports already taken (its admission runs the NodePorts check too).
            if template.node_name in self.node_labels:
                if pod.host_ports and conflicts(self.ports.get(template.node_name, ()), pod.host_ports):
                    return None, f"node {template.node_name!r} {NO_FREE_PORTS.removeprefix('node(s) ')}"
                return template.node_name, ""
            return None, f"nodeName {template.node_name!r} is not a node of this cluster"
        if pod.names is not None and not pod.names:
            n = len(self.nodes)  # PreFilter failed: its message stands for every node
            return (
                None,
                f"0/{n} nodes are available: {CONFLICT_REASON}. preemption: 0/{n} nodes are available: {n} {NOT_HELPFUL}.",
            )
        spread = SpreadFilter(pod.spread, template, self.nodes, self.index) if pod.spread.hard else None
        interpod = None
        if pod.terms or self.index.groups:
            interpod = InterPodFilter(pod.terms, pod.namespace, pod.labels, self.node_labels, self.index)
            interpod = interpod if interpod.active() else None
        statuses: list[tuple[str, bool]] = []
        feasible: list[NodeSpec] = []
        for node, static in zip(self.nodes, pod.static):
            status: tuple[str, bool] | None = None
            if pod.names is not None and node.name not in pod.names:
                status = (PREFILTERED_REASON, False)
            elif static is not None:
                status = (static, False)
            elif pod.host_ports and conflicts(self.ports.get(node.name, ()), pod.host_ports):
                status = (NO_FREE_PORTS, True)  # NodePorts, before the spreading filters
            elif spread is not None:
                status = spread.reason(node)
            if status is None and interpod is not None:
                status = interpod.reason(node)
            if status is None:
                feasible.append(node)
            else:
                statuses.append(status)
        if not feasible:
            return None, fit_error(statuses)
        if len(feasible) == 1:
            return feasible[0].name, ""
        return self._best(pod, feasible), ""

    def _best(self, pod: Prepared, feasible: Sequence[NodeSpec]) -> str:
        total = [0] * len(feasible)  # TaintToleration: equal everywhere without PreferNoSchedule taints
        if any(t.effect == "PreferNoSchedule" for n in feasible for t in n.taints):
            total = [WEIGHTS["TaintToleration"] * s for s in taint_scores(feasible, pod.template)]
        for weight, scores in (
            (WEIGHTS["NodeAffinity"], affinity_scores(feasible, pod.template)),
            (WEIGHTS["PodTopologySpread"], spread_scores(pod.spread, pod.template, feasible, self.nodes, self.index)),
            (
                WEIGHTS["InterPodAffinity"],
                interpod_scores(pod.terms, pod.namespace, pod.labels, feasible, self.node_labels, self.index),
            ),
        ):
            if scores is not None:
                total = [t + weight * s for t, s in zip(total, scores)]
        load = self.index.load
        # NodeResourcesFit (weight 1), exact: 100 × (NOMINAL_PODS − pods after binding) / NOMINAL_PODS
        keyed = [
            (t * NOMINAL_PODS + 100 * (NOMINAL_PODS - load.get(n.name, 0) - 1), -i)
            for i, (t, n) in enumerate(zip(total, feasible))
        ]
        return feasible[-max(keyed)[1]].name
