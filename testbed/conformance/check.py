"""The conformance suite's pure half: expected tables, comparison, explanations, results; pure.

The cases come from cases.py (generate_cases). A runner with a live cluster (built from
data/three-nodes.yaml and data/xyz.yaml, see resources.py) does, for every case and step:

    manifests = step_manifests(base_manifests, step)            # the desired state, whole
    plan = replan(cluster_spec, manifests, seed, prev=live.plan) # pods kept: same names and IPs
    live.apply(plan, manifests)                                  # policies and labels reconciled
    world = World.from_plan(plan, manifests)
    observed = {probe: connected?  for probe in probes()}        # 486 real probes
    result = check_step(case, i, world, observed, seconds=...)   # expected, mismatches, why

then `CaseResult(case, steps)` per case, a `Summary` for the run, and junit.py for
JUnit XML. `transition(before, after)` says what changes between two steps in kubectl terms
(apply / delete a policy, label a pod or a namespace) for logs and for a runner that applies
deltas. Steps are whole states, so a runner may go straight from the last step of one case to
the first step of the next (the policies and labels of the old case are undone by the same
reconcile); `transition(last, BASE)` / step_manifests(base, BASE) return to the bare model.

Probes are pod to pod among the nine model pods, both ports, three protocols, self included:
9 x 9 x 2 x 3 = 486 per step. Observed values are True (connected) or False (blocked); a probe
missing from the observed table is a mismatch with `observed None` ("not measured").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..spec.model import Manifests, Namespace
from .cases import (BASE, FEATURES, MODEL_NAMESPACES, PODS, PORTS, PROTOCOLS, Case, Step, decode_text,
                    generate_cases)
from ..netpol.explain import explain_flow
from ..netpol.oracle import Flow, decide, truth_table
from ..netpol.world import World

Probe = tuple[str, str, int, str]   # (source pod, destination pod, port, protocol)

__all__ = [
    "BASE", "Case", "CaseResult", "FEATURES", "Mismatch", "PODS", "PORTS", "PROTOCOLS", "Probe", "Step",
    "StepResult", "Summary", "Transition", "check_step", "compare", "decode_text", "expected_table",
    "explain", "generate_cases", "probes", "step_manifests", "step_world", "summary_lines", "transition",
]


def probes() -> list[Probe]:
    """Every probe of a step, in a stable order (source, destination, protocol, port)."""
    return [(s, d, port, proto) for s in PODS for d in PODS for proto in PROTOCOLS for port in PORTS]


# -- expected ----------------------------------------------------------------------------------------

def step_world(step: Step, world: World) -> World:
    """`world` (the model's pods with their real IPs, e.g. World.from_plan) in the state of `step`:
    its policies replace any in `world`, and every model pod and namespace carries the step's labels
    (the step's own label sets, or the model's where the step says nothing)."""
    out = world.with_policies(step.policies)
    for ref in PODS:
        labels = step.labels_of_pod(ref)
        if dict(out.pod(ref).labels) != labels:
            out = out.with_pod_labels(ref, labels)
    for name in MODEL_NAMESPACES:
        labels = step.labels_of_namespace(name)
        if {k: v for k, v in out.namespace_labels(name).items() if k != "kubernetes.io/metadata.name"} != labels:
            out = out.with_namespace_labels(name, labels)
    return out


def expected_table(step: Step, world: World) -> dict[Probe, bool]:
    """The oracle's verdict for every probe of the step: {(src, dst, port, protocol): allowed}."""
    return truth_table(step_world(step, world), PODS, PODS, PORTS, PROTOCOLS)  # type: ignore[return-value]


# -- comparison --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mismatch:
    source: str
    destination: str
    port: int
    protocol: str
    expected: bool
    observed: bool | None       # None: not measured
    explanation: str = ""       # the oracle's words (explain_flow), filled by explain()

    @property
    def probe(self) -> Probe:
        return (self.source, self.destination, self.port, self.protocol)

    def describe(self) -> str:
        seen = "not measured" if self.observed is None else ("allowed" if self.observed else "blocked")
        return (f"{self.source} -> {self.destination} {self.protocol}/{self.port}: "
                f"expected {'allowed' if self.expected else 'blocked'}, observed {seen}")


def compare(expected: Mapping[Probe, bool], observed: Mapping[Probe, bool | None]) -> list[Mismatch]:
    """Every probe whose observation differs from the expectation (or is missing), in the
    expected table's order. Observations of probes not expected are ignored."""
    out = []
    for probe, want in expected.items():
        seen = observed.get(probe)
        if seen is None or bool(seen) != bool(want):
            out.append(Mismatch(probe[0], probe[1], probe[2], probe[3], bool(want),
                                None if seen is None else bool(seen)))
    return out


def explain(mismatches: Iterable[Mismatch], step: Step, world: World) -> list[Mismatch]:
    """The mismatches with the oracle's explanation of each flow in the step's state."""
    w = step_world(step, world)
    return [dataclasses.replace(m, explanation=explain_flow(decide(Flow(*m.probe), w))) for m in mismatches]


# -- results -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StepResult:
    index: int
    note: str
    probes: int                              # probes expected
    mismatches: tuple[Mismatch, ...] = ()
    seconds: float = 0.0                     # time to enforce the step (apply -> rules in place)
    allowed: int = 0                         # probes the oracle allows

    @property
    def passed(self) -> bool:
        return not self.mismatches


def check_step(case: Case, index: int, world: World, observed: Mapping[Probe, bool | None],
               seconds: float = 0.0) -> StepResult:
    """Expected table, mismatches and their explanations for step `index` of `case`."""
    step = case.steps[index]
    expected = expected_table(step, world)
    bad = compare(expected, observed)
    return StepResult(index, step.note, len(expected), tuple(explain(bad, step, world)), seconds,
                      sum(expected.values()))


@dataclass(frozen=True)
class CaseResult:
    case: Case
    steps: tuple[StepResult, ...] = ()
    seconds: float = 0.0
    error: str = ""       # the runner could not run the case (an exception, a build failure...)
    skipped: str = ""     # why the case was not run

    @property
    def name(self) -> str:
        return self.case.name

    @property
    def mismatches(self) -> int:
        return sum(len(s.mismatches) for s in self.steps)

    @property
    def probes(self) -> int:
        return sum(s.probes for s in self.steps)

    @property
    def status(self) -> str:
        if self.skipped:
            return "skipped"
        if self.error:
            return "error"
        return "failed" if self.mismatches else "passed"


@dataclass
class Summary:
    """A run of the suite: what the runner fills, what the JUnit file and the report read."""

    seed: int = 0
    results: list[CaseResult] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)   # topology, run id, timings...

    def add(self, result: CaseResult) -> None:
        self.results.append(result)

    def counts(self) -> dict[str, int]:
        by_status = {s: 0 for s in ("passed", "failed", "error", "skipped")}
        for r in self.results:
            by_status[r.status] += 1
        return {"cases": len(self.results), **by_status,
                "steps": sum(len(r.steps) for r in self.results),
                "probes": sum(r.probes for r in self.results),
                "mismatches": sum(r.mismatches for r in self.results)}

    def by_tag(self) -> dict[str, dict[str, int]]:
        """{tag: {cases, passed, failed, error, skipped}} over every tag of every case."""
        out: dict[str, dict[str, int]] = {}
        for r in self.results:
            for tag in r.case.tags:
                row = out.setdefault(tag, {"cases": 0, "passed": 0, "failed": 0, "error": 0, "skipped": 0})
                row["cases"] += 1
                row[r.status] += 1
        return dict(sorted(out.items()))

    @property
    def passed(self) -> bool:
        c = self.counts()
        return c["failed"] == 0 and c["error"] == 0


# -- live changes ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Transition:
    """What to change on a live cluster to go from one step to the next.

    `apply`: policies new or changed (kubectl apply); `delete`: (namespace, name) of policies no
    longer in force; `pod_labels` / `namespace_labels`: label patches (`None` removes the key),
    as `kubectl label pod|namespace ... k=v k-` would do them. `texts` holds the YAML of each
    applied policy, in the same order as `apply`.
    """

    apply: tuple[Any, ...] = ()
    texts: tuple[str, ...] = ()
    delete: tuple[tuple[str, str], ...] = ()
    pod_labels: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)
    namespace_labels: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.apply or self.delete or self.pod_labels or self.namespace_labels)

    def describe(self) -> list[str]:
        """The changes as kubectl commands (for logs and reports)."""
        def patch(changes: Mapping[str, str | None]) -> str:
            return " ".join(f"{k}-" if v is None else f"{k}={v}" for k, v in changes.items())
        lines = [f"kubectl apply -f <{p.namespace}/{p.name}>  # NetworkPolicy" for p in self.apply]
        lines += [f"kubectl delete networkpolicy -n {ns} {name}" for ns, name in self.delete]
        lines += [f"kubectl label pod -n {ref.split('/')[0]} {ref.split('/')[1]} {patch(ch)} --overwrite"
                  for ref, ch in self.pod_labels.items()]
        lines += [f"kubectl label namespace {ns} {patch(ch)} --overwrite" for ns, ch in self.namespace_labels.items()]
        return lines


def _patch(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {k: v for k, v in after.items() if before.get(k) != v}
    out.update({k: None for k in before if k not in after})
    return out


def transition(before: Step | None, after: Step) -> Transition:
    """The changes from `before` (None: the model without policies) to `after`."""
    before = before or BASE
    old = dict(zip(before.policy_names(), before.texts))
    new_texts = dict(zip(after.policy_names(), after.texts))
    apply = [(p, new_texts[p.full_name]) for p in after.policies if old.get(p.full_name) != new_texts[p.full_name]]
    delete = tuple(tuple(n.split("/", 1)) for n in before.policy_names() if n not in new_texts)
    pods = {ref: _patch(before.labels_of_pod(ref), after.labels_of_pod(ref)) for ref in PODS}
    nss = {ns: _patch(before.labels_of_namespace(ns), after.labels_of_namespace(ns)) for ns in MODEL_NAMESPACES}
    return Transition(tuple(p for p, _ in apply), tuple(t for _, t in apply), delete,  # type: ignore[arg-type]
                      {k: v for k, v in pods.items() if v}, {k: v for k, v in nss.items() if v})


def step_manifests(base: Manifests, step: Step) -> Manifests:
    """The desired Manifests at `step`: `base` (the model, e.g. load_manifests of
    resources.MODEL) with the step's policies instead of base's, and the model's
    bare pods and namespaces carrying the step's labels. Replan from it with prev= the live
    plan: bare pods keep their names and IPs, their labels follow (plan.build._kept)."""
    pods = []
    for p in base.pods:
        ref = f"{p.ref.namespace}/{p.ref.name}"
        if ref in PODS and dict(p.template.labels) != step.labels_of_pod(ref):
            p = dataclasses.replace(p, template=dataclasses.replace(p.template, labels=step.labels_of_pod(ref)))
        pods.append(p)
    namespaces = tuple(Namespace(n.name, step.labels_of_namespace(n.name)) if n.name in MODEL_NAMESPACES else n
                       for n in base.namespaces)
    return dataclasses.replace(base, pods=tuple(pods), namespaces=namespaces, policies=tuple(step.policies))


def summary_lines(summary: Summary) -> list[str]:
    """A few lines for a terminal: counts, then each failed case and its first mismatches."""
    c = summary.counts()
    lines = [f"{c['cases']} cases, {c['steps']} steps, {c['probes']} probes: {c['passed']} passed, "
             f"{c['failed']} failed, {c['error']} errors, {c['skipped']} skipped; {c['mismatches']} mismatches"]
    for r in summary.results:
        if r.status in ("failed", "error"):
            lines.append(f"  {r.status.upper()} {r.name}: " + (r.error or f"{r.mismatches} mismatches"))
            shown = [m for s in r.steps for m in s.mismatches][:3]
            lines += [f"    {m.describe()}" for m in shown]
    return lines
