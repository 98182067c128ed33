"""The conformance suite's checks: expected truth tables from the oracle, comparison with what
was measured, and the oracle's explanation of each mismatch; pure.

The cases come from generator.py (generate_cases). A runner with a live cluster (built from
data/three-nodes.yaml and data/xyz.yaml, see resources.py) does, for every case and step:

    manifests = step_manifests(base_manifests, step)            # changes.py: the desired state, whole
    plan = replan(cluster_spec, manifests, seed, prev=live.plan) # pods kept: same names and IPs
    live.apply(plan)                                             # policies and labels reconciled
    world = World.from_plan(plan)
    observed = {probe: connected?  for probe in probes()}        # 486 real probes
    result = check_step(case, i, world, observed, seconds=...)   # expected, mismatches, why

then `CaseResult(case, steps)` per case and a `Summary` for the run (results.py), and junit.py
for JUnit XML.

Probes are pod to pod among the nine model pods, both ports, three protocols, self included:
9 x 9 x 2 x 3 = 486 per step. Observed values are True (connected) or False (blocked); a probe
missing from the observed table is a mismatch with `observed None` ("not measured").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from ..netpol.explain import explain_flow
from ..netpol.oracle import Flow, decide, truth_table
from ..netpol.world import World
from .results import Mismatch, Probe, StepResult
from .steps import Case, Step
from .xyz import MODEL_NAMESPACES, PODS, PORTS, PROTOCOLS


def probes() -> list[Probe]:
    """Every probe of a step, in a stable order (source, destination, protocol, port)."""
    return [(s, d, port, proto) for s in PODS for d in PODS for proto in PROTOCOLS for port in PORTS]


# -- expected ----------------------------------------------------------------------------------------


def step_world(step: Step, world: World) -> World:
    """`world` (the model's pods with their real IPs, e.g. World.from_plan) in the state of `step`:
    its policies replace any in `world`, and every model pod and namespace carries the step's labels
    (the step's own label sets, or the model's where the step says nothing)."""
    out = world.with_policies(step.policies).with_tiers(step.tiers)
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


def compare(expected: Mapping[Probe, bool], observed: Mapping[Probe, bool | None]) -> list[Mismatch]:
    """Every probe whose observation differs from the expectation (or is missing), in the
    expected table's order. Observations of probes not expected are ignored."""
    out = []
    for probe, want in expected.items():
        seen = observed.get(probe)
        if seen is None or bool(seen) != bool(want):
            out.append(
                Mismatch(probe[0], probe[1], probe[2], probe[3], bool(want), None if seen is None else bool(seen))
            )
    return out


def explain(mismatches: Iterable[Mismatch], step: Step, world: World) -> list[Mismatch]:
    """The mismatches with the oracle's explanation of each flow in the step's state."""
    w = step_world(step, world)
    return [dataclasses.replace(m, explanation=explain_flow(decide(Flow(*m.probe), w))) for m in mismatches]


def check_step(
    case: Case, index: int, world: World, observed: Mapping[Probe, bool | None], seconds: float = 0.0
) -> StepResult:
    """Expected table, mismatches and their explanations for step `index` of `case`."""
    step = case.steps[index]
    expected = expected_table(step, world)
    bad = compare(expected, observed)
    return StepResult(
        index, step.note, len(expected), tuple(explain(bad, step, world)), seconds, sum(expected.values())
    )
