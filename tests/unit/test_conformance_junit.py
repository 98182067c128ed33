"""JUnit XML of the conformance suite (conformance/junit.py): valid XML, counts, every mismatch explained."""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET

from testbed.conformance.check import check_step, expected_table
from testbed.conformance.generator import generate_cases
from testbed.conformance.junit import failure_text, junit_xml
from testbed.conformance.resources import MODEL, TOPOLOGY
from testbed.conformance.results import CaseResult, Summary
from testbed.netpol import World
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests


@functools.cache
def world() -> World:
    manifests = load_manifests([MODEL])
    plan = plan_cluster(load_topology(TOPOLOGY), manifests, seed=0)
    return World.from_plan(plan)


def run(case, flips=(), seconds=1.5) -> CaseResult:
    """A case 'measured' as the oracle says, but with `flips` (step, probe) observed the other way."""
    steps = []
    for i, step in enumerate(case.steps):
        observed = expected_table(step, world())
        for index, probe in flips:
            if index == i:
                observed[probe] = not observed[probe]
        steps.append(check_step(case, i, world(), observed, seconds=0.01 * (i + 1)))
    return CaseResult(case, tuple(steps), seconds)


def summary() -> Summary:
    cases = {c.name: c for c in generate_cases(seed=5)}
    s = Summary(seed=5, properties={"topology": "topologies/three-nodes.yaml"})
    s.add(run(cases["deny-ingress-x-all"]))
    s.add(
        run(
            cases["relabel-pod-peer-gains-role"],
            [(1, ("y/b", "x/a", 80, "TCP")), (2, ("y/b", "x/a", 81, "UDP")), (2, ("z/a", "z/b", 80, "SCTP"))],
        )
    )
    s.add(CaseResult(cases["ipblock-ingress-x-all-but-node1-all"], (), 0.2, error="build failed:\nno such device"))
    s.add(CaseResult(cases["update-target"], skipped="--limit"))
    return s


def test_junit_parses_back_with_counts_and_properties():
    text = junit_xml("netpol-conformance", summary())
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(text)
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert {k: suite.get(k) for k in ("name", "tests", "failures", "errors", "skipped")} == {
        "name": "netpol-conformance",
        "tests": "4",
        "failures": "1",
        "errors": "1",
        "skipped": "1",
    }
    assert suite.get("time") == f"{1.5 + 1.5 + 0.2:.3f}"
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["seed"] == "5" and props["topology"] == "topologies/three-nodes.yaml"
    assert props["cases"] == "4" and props["mismatches"] == "3" and props["probes"] == str(4 * 486)
    assert props["tag.relabel-pod"] == "0/1 passed" and props["tag.deny"] == "1/1 passed"
    cases = {tc.get("name"): tc for tc in suite.findall("testcase")}
    assert cases["deny-ingress-x-all"].get("classname") == "conformance.deny"
    assert cases["relabel-pod-peer-gains-role"].get("classname") == "conformance.relabel-pod"
    assert cases["deny-ingress-x-all"].find("failure") is None
    assert cases["update-target"].find("skipped").get("message") == "--limit"
    err = cases["ipblock-ingress-x-all-but-node1-all"].find("error")
    assert err.get("message") == "build failed:" and "no such device" in err.text


def test_failure_lists_every_mismatch_with_the_oracle_explanation():
    root = ET.fromstring(junit_xml("s", summary()))
    tc = [t for t in root.iter("testcase") if t.get("name") == "relabel-pod-peer-gains-role"][0]
    failure = tc.find("failure")
    assert failure.get("message") == "3 mismatches in 2 of 3 steps"
    assert failure.get("type") == "ConformanceMismatch"
    text = failure.text
    assert "step 2 of 3 (label pod y/b role=admin): 1 mismatch of 486 probes" in text
    assert "y/b -> x/a TCP/80: expected allowed, observed blocked" in text
    assert "y/b -> x/a UDP/81: expected blocked, observed allowed" in text
    assert "z/a -> z/b SCTP/80: expected allowed, observed blocked" in text
    assert text.count("verdict: ") == 3
    assert "allowed by x/from-admins spec.ingress[0]" in text
    assert "no NetworkPolicy selects z/b for ingress" in text
    out = tc.find("system-out").text
    assert "tags: relabel-pod" in out and "step 2: label pod y/b role=admin: 486 probes" in out


def test_results_as_a_list_and_extra_properties_and_bad_characters():
    s = summary()
    bad = s.results[2]
    bad = CaseResult(bad.case, (), 0.0, error="oops \x00\x1b[31m red & <b>")
    text = junit_xml("list <&>", [s.results[0], bad], properties={"seed": 9, "run": "r-1"})
    root = ET.fromstring(text)
    suite = root.find("testsuite")
    assert suite.get("name") == "list <&>" and suite.get("tests") == "2" and suite.get("errors") == "1"
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["seed"] == "9" and props["run"] == "r-1"
    assert suite.find("testcase/error").text == "oops [31m red & <b>"


def test_failure_text_of_a_passing_case_is_empty():
    cases = {c.name: c for c in generate_cases(limit=40)}
    assert failure_text(run(cases["deny-ingress-x-all"])).strip() == ""
