"""Upstream kube-proxy's packet-flow tests, replayed over the testbed's rules in both modes.

The cases (tests/upstream/kube_proxy_flows.yaml) are upstream's own (pkg/proxy/nftables and
iptables proxier_test.go, runPacketFlowTests): every flow the testbed can express must give
upstream's answer, the others are counted under the feature they need. Breaking one kind of
rule must make flows fail, or these tests could not catch a wrong rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from testbed.kubeproxy import build_ruleset
from testbed.kubeproxy.replay import (
    FEATURES,
    NODE_PORT_ADDRESSES_ON_SECONDARY,
    decode_case,
    environment_of,
    replay,
    summary,
)
from testbed.rules.model import Dnat, Drop, Masquerade, Reject, Rule, Ruleset, SetMark

DATA = Path(__file__).resolve().parents[1] / "upstream" / "kube_proxy_flows.yaml"
MODES = ("iptables", "nftables")
FLOW_KEYS = {"name", "source", "destination", "port", "protocol", "output", "masq", "needs", "modes", *MODES}


def load() -> dict:
    return yaml.safe_load(DATA.read_text())


RESULTS = {(r.test, r.flow, r.protocol, r.mode): r for r in replay(load(), MODES)}


def test_the_data_names_its_upstream_source_and_only_known_features():
    data = load()
    assert data["upstream"]["repo"] == "kubernetes/kubernetes"
    assert len(data["upstream"]["commit"]) == 40
    for case in data["tests"]:
        decode_case(environment_of(data, case), case)  # every case decodes
        assert set(case) <= {"name", "family", "modes", "config", "services", "slices", "flows"}, case["name"]
        assert case.get("family", "IPv4") in ("IPv4", "IPv6")
        for flow in case["flows"]:
            # a stray key is a YAML slip (an unquoted comma in a flow-style name splits it)
            assert set(flow) <= FLOW_KEYS, (case["name"], flow["name"])
            assert set(flow.get("needs", ())) <= FEATURES, flow["name"]
            assert set(flow.get("modes", MODES)) <= set(MODES)


@pytest.mark.parametrize("mode", MODES)
def test_every_expressible_upstream_flow_matches(mode):
    results = [r for r in RESULTS.values() if r.mode == mode]
    bad = [r.line() + "\n" + r.detail for r in results if r.status == "mismatch"]
    assert not bad, "\n".join(bad)
    assert sum(r.status == "match" for r in results) >= 47, summary(results)


@pytest.mark.parametrize("key", sorted(RESULTS), ids=lambda k: " / ".join(k))
def test_upstream_flow(key):
    r = RESULTS[key]
    if r.status == "needs":
        pytest.skip(f"needs {', '.join(r.needs)}")
    assert r.status == "match", r.line() + "\n" + r.detail


def test_a_missing_feature_is_counted_and_turns_on_by_itself():
    data = load()
    without = summary(replay(data, MODES, features=()))
    assert "need external-ips" in without and "need several-lb-addresses" in without
    everything = replay(data, MODES, features=FEATURES | {NODE_PORT_ADDRESSES_ON_SECONDARY})
    assert all(r.status != "needs" for r in everything)
    # nodePortAddresses naming a secondary node address: nodes here have one address, so with
    # the feature claimed anyway that flow shows as a mismatch; by default it is counted as needed
    assert any(r.status == "mismatch" and "secondary IP" in r.flow for r in everything)
    assert any(r.status == "needs" and r.needs == (NODE_PORT_ADDRESSES_ON_SECONDARY,) for r in replay(data, MODES))


# -- breaking a rule must break flows ---------------------------------------------------------


def _breaking(drop: Callable[[Rule], bool]):
    def build(plan, node, host_ip, pod_subnet, mode) -> Ruleset:
        rs = build_ruleset(plan, node, host_ip, pod_subnet, mode)
        tables = tuple(
            dataclasses.replace(
                t,
                chains=tuple(dataclasses.replace(c, rules=tuple(r for r in c.rules if not drop(r))) for c in t.chains),
            )
            for t in rs.tables
        )
        return dataclasses.replace(rs, tables=tables)

    return build


BREAKS: dict[str, Callable[[Rule], bool]] = {
    "no masquerade": lambda r: isinstance(r.verdict, Masquerade),
    "no mark for masquerade": lambda r: isinstance(r.verdict, SetMark),
    "no reject": lambda r: isinstance(r.verdict, Reject),
    "no drop": lambda r: isinstance(r.verdict, Drop),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(BREAKS))
def test_removing_a_kind_of_rule_makes_upstream_flows_fail(mode, name):
    results = replay(load(), (mode,), build=_breaking(BREAKS[name]))
    assert sum(r.status == "mismatch" for r in results) >= 3, summary(results)


@pytest.mark.parametrize("mode", MODES)
def test_a_wrong_dnat_port_makes_upstream_flows_fail(mode):
    def build(plan, node, host_ip, pod_subnet, m):
        rs = build_ruleset(plan, node, host_ip, pod_subnet, m)

        def fix(r: Rule) -> Rule:
            if isinstance(r.verdict, Dnat):
                return dataclasses.replace(r, verdict=dataclasses.replace(r.verdict, port=r.verdict.port + 1))
            return r

        tables = tuple(
            dataclasses.replace(
                t, chains=tuple(dataclasses.replace(c, rules=tuple(fix(r) for r in c.rules)) for c in t.chains)
            )
            for t in rs.tables
        )
        return dataclasses.replace(rs, tables=tables)

    results = replay(load(), (mode,), build=build)
    dnat_flows = [r for r in results if r.status != "needs" and r.expected.output not in ("", "REJECT", "DROP")]
    assert dnat_flows and all(r.status == "mismatch" for r in dnat_flows)


# -- the checker script (scripts/upstream_flows.py) -------------------------------------------

GO = """
const testNodeIP = "192.168.0.2"
const testExternalClient = "203.0.113.2"
const testExternalClientBlocked = "203.0.113.130"

func TestLoadBalancer(t *testing.T) {
	svcIP := "172.30.0.41"
	svcPort := 80
	epIP := "10.180.0.1"
	runPacketFlowTests(t, getLine(), nft, testNodeIPs, []packetFlowTest{
		{
			name:     "pod to cluster IP",
			sourceIP: "10.0.0.2",
			destIP:   svcIP,
			destPort: svcPort,
			output:   fmt.Sprintf("%s:%d", epIP, svcPort),
			masq:     false,
		},
		{
			name:     "blocked external to LB1",
			sourceIP: testExternalClientBlocked,
			destIP:   "1.2.3.4",
			destPort: svcPort,
			output:   "DROP",
		},
	})
}
"""


def _script():
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "upstream_flows.py"
    spec = importlib.util.spec_from_file_location("upstream_flows", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_checker_reads_upstream_tables_and_finds_the_yaml_in_agreement():
    mod = _script()
    flows = mod.extract(GO)["TestLoadBalancer"]
    assert flows[0] == {
        "name": "pod to cluster IP",
        "sourceIP": "10.0.0.2",
        "destIP": "172.30.0.41",
        "destPort": "80",
        "output": "10.180.0.1:80",
        "masq": "false",
    }
    assert flows[1]["sourceIP"] == "203.0.113.130" and flows[1]["output"] == "DROP"
    assert mod.check(GO, load()) == []


def test_the_checker_reports_a_flow_the_yaml_gets_wrong_or_lacks():
    mod = _script()
    wrong = GO.replace('output:   "DROP"', 'output:   "REJECT"').replace(
        '"pod to cluster IP"', '"pod to cluster IP, again"'
    )
    problems = mod.check(wrong, load())
    assert len(problems) == 2
    assert any("not in the YAML" in p for p in problems) and any("upstream ('REJECT', '')" in p for p in problems)
