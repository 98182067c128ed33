"""Upstream Kubernetes' e2e NetworkPolicy cases restated as experiments (scripts/netpol_e2e_port.py,
benchmarks/netpol48/): the committed files are what the script writes, every file loads and
passes the experiment checks, the ipBlock cases name the model's addresses, and every expectation
upstream's reachability matrices give is the policy oracle's verdict at that step."""

from __future__ import annotations

import filecmp
import importlib.util
import ipaddress
import os

import pytest

from testbed.experiment.changes import apply_action
from testbed.experiment.check import check_experiment
from testbed.experiment.load import load_experiment
from testbed.netpol import Flow, decide, explain_flow
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUITE = os.path.join(REPO, "benchmarks", "netpol48")
CASES = sorted(os.listdir(os.path.join(SUITE, "cases")))


def _script():
    spec = importlib.util.spec_from_file_location(
        "netpol_e2e_port", os.path.join(REPO, "scripts", "netpol_e2e_port.py")
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_suite_is_what_the_script_writes(tmp_path):
    assert _script().main(["netpol_e2e_port.py", str(tmp_path)]) == 0
    for sub in ("cases", "policies"):
        ours, theirs = sorted(os.listdir(os.path.join(SUITE, sub))), sorted(os.listdir(tmp_path / sub))
        assert ours == theirs
        _, differ, errors = filecmp.cmpfiles(os.path.join(SUITE, sub), tmp_path / sub, ours, shallow=False)
        assert not differ and not errors, differ
    assert len(CASES) == 48
    protocols = [c.split("-", 1)[0] for c in CASES]
    assert (protocols.count("tcp"), protocols.count("udp"), protocols.count("sctp")) == (42, 3, 3)


def test_upstreams_reachability_calls_replayed():
    """upstream's Reachability: later calls override earlier ones; ExpectAllIngress/Egress take
    every pod of the model as the other end."""
    s = _script()
    table = s.truth([{"ExpectPeer": [{"namespace": "x", "pod": "a"}, {}, False]}, {"Expect": ["x/a", "y/a", True]}])
    assert not table["x/a", "z/c"] and table["x/a", "y/a"] and table["y/a", "x/a"]
    table = s.truth([{"ExpectAllIngress": ["x/a", False]}, {"Expect": ["x/b", "x/a", True]}])
    assert [a for a in s.PODS if table[a, "x/a"]] == ["x/b"]
    with pytest.raises(ValueError):
        s.truth([{"ExpectSomething": []}])


@pytest.fixture(scope="module")
def model():
    exp = load_experiment(os.path.join(SUITE, "cases", CASES[0]), check=False)
    return exp, load_topology(exp.topology), load_manifests(list(exp.manifests))


def test_the_ipblock_cases_name_the_models_addresses(model):
    exp, cluster, manifests = model
    plan = plan_cluster(cluster, manifests, seed=0)
    ips = {f"{p.namespace}/{p.name}": p.ip for p in plan.pods}
    assert {k: ips[k] for k in _script().MODEL_IPS} == _script().MODEL_IPS
    cidrs = {
        block["cidr"]
        for case in _script().load_cases()
        for step in case["steps"]
        for act in step["do"]
        for rule in act.get("apply", {}).get("spec", {}).get("egress", [])
        for peer in rule.get("to", [])
        for block in [peer.get("ipBlock")]
        if block
    }
    # y/b's and x/b's /32, and makeLargeCIDRForIP(x/b): the /4 holding it
    assert cidrs == {f"{ips['y/b']}/32", f"{ips['x/b']}/32", str(ipaddress.ip_network(f"{ips['x/b']}/4", strict=False))}


@pytest.mark.parametrize("case", CASES)
def test_every_expectation_is_the_oracles_verdict(case, model):
    _, cluster, base = model
    exp = load_experiment(os.path.join(SUITE, "cases", case), check=False)
    check_experiment(exp)
    manifests, plan = base, plan_cluster(cluster, base, seed=exp.seed)
    wrong, probes = [], 0
    for step in exp.steps:
        for action in step.actions:
            manifests, plan = apply_action(action, cluster, manifests, plan, exp.file)
        for group in step.probes:
            assert group.expect.outcome in ("connected", "blocked")
            sources, targets = group.source.pods, group.target.pods
            assert sources is not None and targets is not None
            for src in sources.names:
                for dst in targets.names:
                    for port in group.ports:
                        probes += 1
                        verdict = decide(Flow(src, dst, int(port), group.protocols[0]), plan.world)
                        if verdict.allowed != (group.expect.outcome == "connected"):
                            wrong.append(f"{step.name} {src}->{dst} {port}: {explain_flow(verdict)}")
    assert probes and not wrong, "\n".join(wrong)


def test_the_bench_row_counts_evidence_and_sets_the_target_pro_rata(tmp_path):
    from testbed.bench.netpol48 import evidence
    from testbed.bench.suite import netpol48_figure

    (tmp_path / "probes.csv").write_text(
        "expected_outcome,outcome,evidence\nblocked,timeout,drop-log\nblocked,timeout,\nconnected,connected,\n"
    )
    assert evidence(str(tmp_path)) == {"drop-log": 1, "timeout": 1}
    rows = [{"case": f"c{i}", "seconds": 1.5, "exit": 0 if i else 1, "evidence": {"drop-log": 2}} for i in range(8)]
    result = {"cases": 8, "seconds": 12.0, "passed": 7, "failed": ["c0"], "evidence": {"drop-log": 16}, "rows": rows}
    figure = netpol48_figure(result)
    assert (figure.limit, figure.met) == (10.0, False)
    assert "7 passed, 1 failed" in figure.note and "drop log 16, timeout 0" in figure.note
