"""The conformance suite on a single-stack IPv6 cluster, and its cluster variants (issue 15); no root.

`testbed conformance --topology` of an `ipFamily: ipv6` kind config runs the suite in that
IPv6-only cluster: the cases' IPv4 CIDRs (written against the IPv4 model) get their IPv6 twins
on it, and the oracle over its own (IPv6) policy world gives every step the IPv4 model's truth
table. The `--family` flag and the topology's ipFamily agree or the run stops in one line.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.conformance.check import expected_table
from testbed.conformance.family6 import cidr_twins, family_case, resolve_family
from testbed.conformance.generator import generate_cases
from testbed.conformance.modes import FAMILIES, PROXIES, ROUTINGS, mode_topology, tiered_slice, variants
from testbed.conformance.resources import MODEL, TOPOLOGY
from testbed.conformance.run import run_conformance
from testbed.errors import UsageError
from testbed.plan.build import plan_cluster
from testbed.plan.ipv6 import is_ipv6
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@functools.cache
def _plans(tmp: str) -> tuple:
    path = os.path.join(tmp, "ipv6.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(mode_topology("ipv6", "host-gw", "iptables"))
    base = load_manifests([MODEL])
    return plan_cluster(load_topology(TOPOLOGY), base, seed=0), plan_cluster(load_topology(path), base, seed=0)


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    return _plans(str(tmp_path_factory.mktemp("v6only")))


@functools.cache
def _cases() -> tuple:
    return tuple(generate_cases(seed=0)) + tuple(generate_cases(seed=0, tiered=True))


def test_cidr_twins_on_an_ipv6_only_cluster(plans):
    four, six = plans
    assert is_ipv6(six) and six.dual is None and six.world.ip_version == 6
    twin = cidr_twins(six)
    assert twin("0.0.0.0/0") == "::/0"
    assert twin("10.244.0.0/16") == "fd00:10:244::/56"
    assert twin("10.244.1.0/24") == "fd00:10:244:1::/64"
    assert twin("10.244.0.0/23") == "fd00:10:244::/63"
    assert twin("192.168.1.0/24") == "fd00:192:168:1::/64"
    ipv6_pods = {p.key: p.ip for p in six.pods}
    for p in four.pods:  # a pod's /32 in the IPv4 model: its /128 in the IPv6-only cluster
        assert twin(f"{p.ip}/32") == f"{ipv6_pods[p.key]}/128"


@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(st.data())
def test_the_oracle_on_an_ipv6_only_cluster_gives_every_step_the_ipv4_truth_table(plans, data):
    four, six = plans
    case = data.draw(st.sampled_from(_cases()))
    twinned = family_case(case, "ipv6", cidr_twins(six))
    for i, step in enumerate(case.steps):
        assert expected_table(twinned.steps[i], six.world) == expected_table(step, four.world), (case.name, i)


def test_the_family_flag_and_the_topologys_ip_family_agree():
    assert resolve_family(None, "ipv6", "t.yaml") == "ipv6"
    assert resolve_family(None, "dual", "t.yaml") == resolve_family(None, "ipv4", "t.yaml") == "ipv4"
    for family in ("ipv4", "ipv6", "dual"):
        assert resolve_family(family, "dual", "t.yaml") == family
    assert resolve_family("ipv6", "ipv6", "t.yaml") == "ipv6"
    for family, ip_family in (("ipv4", "ipv6"), ("dual", "ipv6"), ("ipv6", "ipv4"), ("dual", "ipv4")):
        with pytest.raises(UsageError, match=f"--family {family}: t.yaml: networking.ipFamily is {ip_family}"):
            resolve_family(family, ip_family, "t.yaml")


def test_a_disagreeing_family_is_one_line_exit_2_nothing_built(tmp_path):
    results = tmp_path / "results"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "testbed.cli",
            "conformance",
            "--topology",
            os.path.join(ROOT, "topologies", "ipv6.yaml"),
        ]
        + ["--family", "ipv4", "--results", str(results)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr.count("\n") == 1 and "networking.ipFamily is ipv6, which has no IPv4" in done.stderr
    assert not results.exists()


def test_every_variant_plans_its_family_routing_and_proxy(tmp_path):
    base = load_manifests([MODEL])
    for family in FAMILIES:
        for routing in ROUTINGS:
            for proxy in PROXIES:
                path = tmp_path / f"{family}-{routing}-{proxy}.yaml"
                path.write_text(mode_topology(family, routing, proxy), encoding="utf-8")
                spec = load_topology(str(path))
                plan = plan_cluster(spec, base, seed=0)
                assert (spec.ip_family, plan.routing, plan.kube_proxy_mode) == (family, routing, proxy)
                assert is_ipv6(plan) == (family == "ipv6") and (plan.dual is not None) == (family == "dual")
                assert [n.name for n in plan.nodes] == ["kind-control-plane", "kind-worker", "kind-worker2"]
    with pytest.raises(ValueError, match="no such variant"):
        mode_topology("ipv4", "host-gw", "iptables")


def test_the_tiered_slices_share_the_suite_out_over_the_variants():
    """Every tiered case in exactly one variant's CI slice; each variant 2 or 3 cases, IPv6 CIDR
    cases (egress networks) among them; a slice is a list of names run_conformance takes."""
    names = [c.name for c in generate_cases(tiered=True)]
    slices = {v: tiered_slice(*v, names) for v in variants()}
    assert len(slices) == len(FAMILIES) * len(ROUTINGS) * len(PROXIES) == 16
    assert sorted(n for s in slices.values() for n in s) == sorted(names) and len(names) == 40
    assert {len(s) for s in slices.values()} == {2, 3}
    assert all(list(s) == [n for n in names if n in s] for s in slices.values())  # the suite's order
    assert "tier-egress-networks" in slices[("dual", "bgp", "iptables")]


def test_an_unknown_case_name_is_refused_before_anything_is_built(tmp_path):
    with pytest.raises(UsageError, match="no such conformance case: 'tier-nope'"):
        run_conformance(TOPOLOGY, str(tmp_path / "results"), tiered=True, names=["tier-admin-deny", "tier-nope"])
    assert not (tmp_path / "results").exists()
