"""The Network Policy API's conformance tests ported as tiered cases (conformance/npapi.py,
data/npapi.yaml): every assertion the upstream tests make is the oracle's verdict on the model,
the model's addresses are the ones the inline-CIDR cases name, and the cases run in
`testbed conformance --tiered` (the runner measures them with real packets)."""

from __future__ import annotations

import pytest

from testbed.conformance.check import step_world
from testbed.conformance.generator import generate_cases
from testbed.conformance.npapi import npapi_cases, npapi_pokes
from testbed.conformance.resources import MODEL, TOPOLOGY
from testbed.netpol import Flow, decide, explain_flow
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests


@pytest.fixture(scope="module")
def model():
    return plan_cluster(load_topology(TOPOLOGY), load_manifests([MODEL]), seed=0)


def test_every_upstream_assertion_is_the_oracles_verdict(model):
    cases = {c.name: c for c in npapi_cases()}
    pokes = npapi_pokes()
    assert len(cases) == 20 and len(pokes) >= 250
    assert {p.connected for p in pokes} == {True, False} and {p.protocol for p in pokes} == {"TCP", "UDP", "SCTP"}
    wrong = []
    for p in pokes:
        verdict = decide(Flow(p.src, p.dst, p.port, p.protocol), step_world(cases[p.case].steps[p.step], model.world))
        if verdict.allowed != p.connected:
            wrong.append(f"{p.case} step {p.step} {p.src}->{p.dst} {p.port}/{p.protocol}: {explain_flow(verdict)}")
    assert not wrong, "\n".join(wrong[:10])


def test_the_inline_cidr_cases_name_the_models_addresses(model):
    ips = {f"{p.namespace}/{p.name}": p.ip for p in model.pods}
    case = next(c for c in npapi_cases() if c.name == "npapi-admin-egress-cidr")
    rule = case.steps[-1].tiers[0].egress[0]
    assert rule.name == "allow-egress-to-specific-podIPs"
    assert rule.peers[0].networks == (f"{ips['z/b']}/32", f"{ips['z/a']}/32")


def test_the_ported_cases_are_in_the_tiered_suite_with_their_steps():
    names = [c.name for c in generate_cases(tiered=True)]
    ported = [c.name for c in npapi_cases()]
    assert set(ported) <= set(names) and len(set(names)) == len(names)
    by = {c.name: c for c in npapi_cases()}
    assert [s.note for s in by["npapi-admin-ingress-tcp"].steps][1:] == [
        "ingress rules 0 and 1 swapped",
        "ingress rules 0 and 2 swapped",
        "ingress rules 3 and 4 swapped",
    ]
    relabel = by["npapi-admin-egress-cidr"].steps[1]
    assert relabel.namespace_labels == {"y": {"ns": "y", "team": "denied-namespace-label"}}
    named = by["npapi-admin-ingress-named-port"].steps[0].tiers[0].ingress[5]
    assert [p.name for p in named.ports] == ["serve-80-udp"]
