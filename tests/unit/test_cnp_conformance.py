"""The tiered conformance cases (conformance/tiered.py): valid by construction, behind a flag
(the NetworkPolicy suite is unchanged), and the Network Policy API's own scenarios give the
verdicts its conformance tests expect."""

from __future__ import annotations

from testbed.conformance.changes import step_manifests
from testbed.conformance.check import expected_table, step_world
from testbed.conformance.generator import generate_cases
from testbed.netpol import Flow, decide
from testbed.spec.model import Manifests

from ._netpol import xyz_world


def _cases():
    return {c.name: c for c in generate_cases(tiered=True)}


def test_tiered_cases_are_behind_the_flag():
    plain = generate_cases(seed=0)
    assert not any("tiered" in c.tags for c in plain)
    tiered = generate_cases(tiered=True)
    assert len(tiered) >= 20 and all(c.tags == ("tiered",) for c in tiered)
    assert len(generate_cases(tiered=True, limit=3)) == 3


def test_every_action_at_each_tier_is_covered():
    seen = {
        (p.tier, r.action)
        for c in generate_cases(tiered=True)
        for s in c.steps
        for p in s.tiers
        for r in p.ingress + p.egress
    }
    assert seen >= {
        ("Admin", "Accept"),
        ("Admin", "Deny"),
        ("Admin", "Pass"),
        ("Baseline", "Accept"),
        ("Baseline", "Deny"),
        ("Baseline", "Pass"),
    }


def _verdict(case, step, src, dst, port=80, proto="TCP"):
    return decide(Flow(src, dst, port, proto), step_world(case.steps[step], xyz_world())).allowed


def test_npapi_anp_np_banp_as_upstream_expects():
    case = _cases()["npapi-anp-np-banp"]
    assert not _verdict(case, 0, "y/a", "x/b") and not _verdict(case, 0, "x/b", "y/a")  # Admin Deny
    assert _verdict(case, 1, "y/a", "x/b") and _verdict(case, 1, "x/b", "y/a")  # Pass -> NP allows
    assert not _verdict(case, 2, "y/a", "x/b") and not _verdict(case, 2, "x/b", "y/a")  # Pass -> Baseline Deny


def test_npapi_priority_field_as_upstream_expects():
    case = _cases()["npapi-priority-field"]
    assert not _verdict(case, 0, "y/a", "x/a") and not _verdict(case, 0, "x/a", "y/a")
    assert _verdict(case, 1, "y/a", "x/a") and _verdict(case, 1, "x/a", "y/a")
    assert _verdict(case, 0, "y/b", "x/a")  # not in the subject's peers


def test_steps_carry_the_tiers_into_manifests_and_tables():
    case = _cases()["tier-updates"]
    m = step_manifests(Manifests(), case.steps[0])
    assert [p.full_name for p in m.cluster_policies] == ["cnp/deny-blue"]
    assert step_manifests(Manifests(), case.steps[2]).cluster_policies == ()
    table = expected_table(case.steps[0], xyz_world())
    assert table[("y/a", "x/a", 80, "TCP")] is False and table[("z/a", "x/a", 80, "TCP")] is True
    assert "ClusterNetworkPolicy" in case.steps[0].yaml
