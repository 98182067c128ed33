"""NetworkPolicy, the tiers, the oracle and the rule tracer over IPv6 (issue 15); no root.

Properties (hypothesis): the conformance cases' ipBlocks keep their meaning when twinned to IPv6
(an address is in a CIDR exactly when its twin is in the twin CIDR); the oracle over the IPv6
policy world gives every step of the generated and tiered suites the same truth table as over
IPv4, for both `--family ipv6` and `dual`; the rule tracer over the IPv6 view's compiled tables
gives the oracle's verdict for IPv6 flows.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.conformance.changes import step_manifests
from testbed.conformance.check import expected_table
from testbed.conformance.family6 import NoTwin, cidr_twins, family_case, measured_families
from testbed.conformance.generator import generate_cases
from testbed.conformance.resources import MODEL, TOPOLOGY, TOPOLOGY_DUAL
from testbed.conformance.xyz import PODS, PORTS, PROTOCOLS
from testbed.netpol.oracle import Flow, decide
from testbed.plan.build import plan_cluster, replan
from testbed.plan.view6 import NotDualStack, family_plan, ipv6_plan
from testbed.rulepath import trace_path
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None)


@functools.cache
def _model():
    spec, base = load_topology(TOPOLOGY_DUAL), load_manifests([MODEL])
    return spec, base, plan_cluster(spec, base, seed=0)


@functools.cache
def _cases() -> tuple:
    return tuple(generate_cases(seed=0)) + tuple(generate_cases(seed=0, tiered=True))


def test_the_dual_conformance_topology_is_the_ipv4_one_made_dual_stack():
    four, six = load_topology(TOPOLOGY), load_topology(TOPOLOGY_DUAL)
    assert six.ip_family == "dual" and four.ip_family == "ipv4"
    plan4, plan6 = plan_cluster(four, load_manifests([MODEL])), _model()[2]
    assert [(n.name, n.host_ip, n.pod_cidr) for n in plan4.nodes] == [
        (n.name, n.host_ip, n.pod_cidr) for n in plan6.nodes
    ]
    assert {(p.key, p.ip, p.node) for p in plan4.pods} == {(p.key, p.ip, p.node) for p in plan6.pods}


def test_cidr_twins_follow_the_upstream_e2e_suites_ipv6_form():
    twin = cidr_twins(_model()[2])
    assert twin("0.0.0.0/0") == "::/0"
    assert twin("10.244.0.0/16") == "fd00:10:244::/56"
    assert twin("10.244.1.0/24") == "fd00:10:244:1::/64"  # a node's /24: its /64
    assert twin("10.244.0.0/23") == "fd00:10:244::/63"  # two nodes' CIDRs: their two /64s
    assert twin("10.244.2.4/32") == "fd00:10:244:2::4/128"  # a pod's /32: its /128
    assert twin("192.168.1.0/24") == "fd00:192:168:1::/64"
    assert twin("192.168.1.10/32") == "fd00:192:168:1::a/128"
    assert twin("fd00::/8") == "fd00::/8"  # already IPv6: as written
    with pytest.raises(NoTwin, match="203.0.113.0/24: no IPv6 twin"):
        twin("203.0.113.0/24")
    ipv4 = plan_cluster(load_topology(TOPOLOGY), load_manifests([MODEL]))
    with pytest.raises(NoTwin, match="dual-stack"):
        cidr_twins(ipv4)


_address = st.one_of(
    st.tuples(st.integers(0, 2), st.integers(0, 255)).map(lambda t: f"10.244.{t[0]}.{t[1]}"),
    st.integers(0, 255).map(lambda h: f"192.168.1.{h}"),
)


@SETTINGS
@given(_address, _address, st.integers(16, 32))
def test_an_address_is_in_a_cidr_exactly_when_its_twin_is_in_the_twin(address, anchor, prefix):
    twin = cidr_twins(_model()[2])
    net = ipaddress.ip_network(f"{anchor}/{prefix}", strict=False)
    if not (
        net.subnet_of(ipaddress.ip_network("10.244.0.0/16")) or net.subnet_of(ipaddress.ip_network("192.168.1.0/24"))
    ):
        return  # 10.244.0.0/15 and the like: not a CIDR the cases write
    inside = ipaddress.ip_address(address) in net
    six = ipaddress.ip_address(twin(f"{address}/32").split("/")[0])
    assert (six in ipaddress.ip_network(twin(str(net)))) == inside, (address, net, twin(str(net)))


def test_pods_addresses_twin_to_their_ipv6_addresses():
    plan = _model()[2]
    twin = cidr_twins(plan)
    assert plan.dual is not None
    for p in plan.pods:
        assert twin(f"{p.ip}/32") == f"{plan.dual.pods[p.key]}/128"


@settings(max_examples=12, deadline=None, derandomize=True, database=None)
@given(st.data())
def test_the_oracle_over_ipv6_gives_every_step_the_ipv4_truth_table(data):
    _, _, plan = _model()
    twin = cidr_twins(plan)
    case = data.draw(st.sampled_from(_cases()))
    world4, world6 = plan.world, ipv6_plan(plan).world
    assert world6.ip_version == 6
    six, dual = family_case(case, "ipv6", twin), family_case(case, "dual", twin)
    for i, step in enumerate(case.steps):
        want = expected_table(step, world4)
        assert expected_table(six.steps[i], world6) == want, f"{case.name} step {i} over IPv6"
        assert expected_table(dual.steps[i], world6) == want, f"{case.name} step {i} dual, IPv6 table"
        assert expected_table(dual.steps[i], world4) == want, f"{case.name} step {i} dual, IPv4 table"


def test_twinned_cases_carry_ipv6_cidrs_only_or_both():
    twin = cidr_twins(_model()[2])
    blocks = [c for c in _cases() if "ipBlock" in c.steps[0].yaml or "networks" in c.steps[0].yaml]
    assert len(blocks) > 20
    for case in blocks[::4]:
        six, dual = family_case(case, "ipv6", twin).steps[0].yaml, family_case(case, "dual", twin).steps[0].yaml
        assert "10.244." not in six and "0.0.0.0/0" not in six and "fd00:" in six or "::/0" in six, case.name
        assert "fd00:" in dual or "::/0" in dual, case.name
        assert ("10.244." in dual or "0.0.0.0/0" in dual or "192.168." in dual) == (
            "10.244." in case.steps[0].yaml or "0.0.0.0/0" in case.steps[0].yaml or "192.168." in case.steps[0].yaml
        )
    assert family_case(blocks[0], "ipv4", twin) is blocks[0]
    assert measured_families("dual") == (4, 6) and measured_families("ipv6") == (6,)


@settings(max_examples=12, deadline=None, derandomize=True, database=None)
@given(st.data())
def test_the_tracer_over_the_ipv6_tables_gives_the_oracles_verdict(data):
    spec, base, plan = _model()
    case = data.draw(st.sampled_from([c for c in _cases() if len(c.steps) == 1]))
    step = family_case(case, "ipv6", cidr_twins(plan)).steps[0]
    view = ipv6_plan(replan(spec, step_manifests(base, step), 0, prev=plan))
    flows = data.draw(
        st.lists(
            st.tuples(st.sampled_from(PODS), st.sampled_from(PODS), st.sampled_from(PORTS), st.sampled_from(PROTOCOLS)),
            min_size=5,
            max_size=15,
        )
    )
    for src, dst, port, proto in flows:
        flow = Flow(src, dst, port, proto)
        assert trace_path(view, view.world, flow).delivered == decide(flow, view.world).allowed, (case.name, flow)


def test_the_ipv6_view_swaps_every_address_and_names_the_twin_table():
    plan = plan_cluster(
        load_topology(os.path.join(ROOT, "topologies", "dual-stack.yaml")),
        load_manifests(
            [os.path.join(ROOT, "manifests", f) for f in ("dual-stack-services.yaml", "dual-stack-policy.yaml")]
        ),
    )
    view = ipv6_plan(plan)
    assert view.dual is None and ipv6_plan(view) is view and family_plan(plan, "10.244.1.2") is plan
    assert all(":" in p.ip for p in view.pods) and all(":" in n.host_ip and ":" in n.pod_cidr for n in view.nodes)
    assert view.pod_subnet == "fd00:10:244::/56" and view.services is not None
    names = {t.name for r in view.rulesets.values() for t in r.tables}
    assert "testbed-netpol6" in names and "testbed-netpol" not in names
    assert not view.hostport_tables and not view.egress_tables
    ipv4 = plan_cluster(load_topology(TOPOLOGY), load_manifests([MODEL]))
    with pytest.raises(NotDualStack):
        ipv6_plan(ipv4)


def test_tiers_are_compiled_into_the_ipv6_twin_with_their_ipv6_networks():
    from testbed.netpol.nft import render
    from testbed.plan.dualstack import ipv6_script, policy_rulesets6

    plan = plan_cluster(
        load_topology(os.path.join(ROOT, "topologies", "dual-stack.yaml")),
        load_manifests([os.path.join(ROOT, "manifests", f) for f in ("quickstart-app.yaml", "dual-stack/tiers.yaml")]),
    )
    assert not any("tiers" in w for w in plan.warnings)  # no longer an IPv4-only warning
    six = ipv6_script(render(policy_rulesets6(plan)["kind-worker"]))
    assert "chain tiers-egress" in six and "fd00:10:244::/56" in six and "ipv4_addr" not in six
    assert 'log prefix "tb drop testbed-netpol6 tiers-egress' in six
    assert "chain tiers-egress" in render(plan.policy_rulesets["kind-worker"])
    (networks,) = [x for x in plan.policy_rulesets["kind-worker"].tables[0].sets if "networks" in x.comment]
    (networks6,) = [x for x in policy_rulesets6(plan)["kind-worker"].tables[0].sets if "networks" in x.comment]
    assert networks.elements == () and networks6.elements == ("fd00:10:244::/56",)  # each family its own
    web = next(p for p in plan.pods if p.labels.get("app") == "web")
    other = next(p for p in plan.pods if p.name == "two-containers")
    assert plan.dual is not None
    world6 = ipv6_plan(plan).world
    blocked = decide(Flow(plan.dual.pods[web.key], plan.dual.pods[other.key], 8080, "TCP"), world6)
    assert blocked.allowed is True  # TCP 80 only
    assert not decide(Flow(f"{web.namespace}/{web.name}", f"{other.namespace}/{other.name}", 80, "TCP"), world6).allowed
    assert decide(Flow(f"{web.namespace}/{web.name}", f"{other.namespace}/{other.name}", 80, "TCP"), plan.world).allowed


def test_ipv6_neighbour_discovery_crosses_the_policy_table_untracked():
    from testbed.netpol.nft import render
    from testbed.plan.dualstack import ipv6_script, policy_rulesets6

    plan = plan_cluster(
        load_topology(os.path.join(ROOT, "topologies", "dual-stack.yaml")),
        load_manifests(
            [os.path.join(ROOT, "manifests", f) for f in ("dual-stack-services.yaml", "dual-stack-policy.yaml")]
        ),
    )
    six = ipv6_script(render(policy_rulesets6(plan)["kind-worker"]))
    assert "ct state established,related,untracked accept" in six
    assert "untracked" not in render(plan.policy_rulesets["kind-worker"])  # IPv4 as before


def _explain(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "testbed", "explain", *args], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def test_explain_over_ipv6_on_the_command_line():
    base = [
        "topologies/dual-stack.yaml",
        "-f",
        "manifests/dual-stack-services.yaml",
        "-f",
        "manifests/dual-stack-policy.yaml",
    ]
    out = _explain(*base, "--from", "other", "--to", "svc/echo-prefer", "--family", "ipv6", "--trace")
    assert out.returncode == 3, out.stderr
    assert "trace other -> svc/echo-prefer (fd00:10:96::" in out.stdout
    assert "testbed-netpol6/check-ingress[2]" in out.stdout and "DNAT to [fd00:10:244:" in out.stdout
    allowed = _explain(*base, "--from", "client", "--to", "fd00:10:244:1::2", "--port", "80/TCP")
    assert allowed.returncode in (0, 3) and "fd00:10:244:1::2" in allowed.stdout
    bad = _explain("topologies/three-nodes.yaml", "--from", "a", "--to", "b", "--family", "ipv6")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "dual-stack" in bad.stderr


def test_the_records_keep_the_clients_source_port():
    from testbed.experiment.expand import Party, PlannedProbe
    from testbed.experiment.records import COLUMNS, make_row

    assert "sport" in COLUMNS
    pod = Party("pod", "a", "x", "n", "fd00:10:244::2", "x_a")
    dst = dataclasses.replace(pod, name="b", ip="fd00:10:244::3")
    probe = PlannedProbe("g", 0, pod, dst, dst.ip, "TCP", 80, "", "c", "pod-to-pod", "blocked", (), 1.0)
    row = make_row("r", "s", 0.0, probe, "timeout", None, None, "no answer", "timeout", "", 41234)
    assert (row["sport"], row["family"]) == (41234, "IPv6")
