"""Issue 15's done-when for NetworkPolicy, on real packets: the generated conformance suite over
IPv6 in a single-stack IPv6 cluster (`--family ipv6`) and over both families in a dual-stack one
(`--family dual`: both truth tables of every step), in every routing mode (host-gw, cloud-routes,
vxlan, bgp) and both kube-proxy modes (iptables, nftables): the model cluster of
testbed/conformance/modes.py in each of the 16 variants runs the first 19 cases (one of every
family of case: deny, allow-all, selectors, ipBlock, ports, updates, relabels, sequences, random
ones...) with 0 mismatches, every blocked verdict known from a drop log, and teardown leaves
nothing behind. benchmarks/conformance_modes.py runs all 325 cases in each (README's figures).
"""

from __future__ import annotations

import ipaddress
import json
import os

import pytest

from testbed.conformance.generator import generate_cases
from testbed.conformance.modes import FAMILIES, PROXIES, ROUTINGS, mode_topology
from testbed.conformance.resources import MODEL
from testbed.conformance.run import run_conformance
from testbed.plan.build import plan_cluster
from testbed.plan.ipv6 import is_ipv6
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

EVERY_FAMILY = 19  # the generator's round-robin order: the first 19 cases span its 19 families


def test_the_subset_spans_every_family_of_case():
    cases = generate_cases(seed=0)
    assert {c.family for c in generate_cases(seed=0, limit=EVERY_FAMILY)} == {c.family for c in cases}


@pytest.mark.parametrize("proxy", PROXIES)
@pytest.mark.parametrize("routing", ROUTINGS)
@pytest.mark.parametrize("family", FAMILIES)
def test_conformance_over_ipv6_in_every_mode(tmp_path, no_leftovers, family, routing, proxy):
    topology = tmp_path / f"{family}-{routing}-{proxy}.yaml"
    topology.write_text(mode_topology(family, routing, proxy), encoding="utf-8")
    # the family follows an IPv6-only topology (no flag); dual is asked for
    run_dir, passed = run_conformance(
        str(topology), str(tmp_path / "results"), limit=EVERY_FAMILY, family=None if family == "ipv6" else family
    )
    meta = json.load(open(os.path.join(run_dir, "conformance.json"), encoding="utf-8"))
    assert passed, open(os.path.join(run_dir, "conformance.md"), encoding="utf-8").read()[:4000]
    counts, evidence = meta["counts"], meta["evidence"]
    assert meta["family"] == family and counts["cases"] == counts["passed"] == EVERY_FAMILY
    assert counts["mismatches"] == 0 and counts["failed"] == counts["error"] == 0
    tables = 2 if family == "dual" else 1  # dual: the IPv4 and the IPv6 truth table of every step
    assert counts["probes"] == counts["steps"] * 486 * tables
    assert evidence["drop-log"] > 0 and evidence["timeout"] == 0  # blocked verdicts from drop logs
    assert len(meta["by_tag"]) > 10
    # the cluster measured: IPv6-only (no IPv4 address anywhere) or dual-stack, in this mode
    plan = plan_cluster(load_topology(str(topology)), load_manifests([MODEL]), seed=0)
    assert (plan.routing, plan.kube_proxy_mode, is_ipv6(plan)) == (routing, proxy, family == "ipv6")
    addresses = [p.ip for p in plan.pods] + [n.host_ip for n in plan.nodes]
    assert all(ipaddress.ip_address(a).version == (6 if family == "ipv6" else 4) for a in addresses)
    assert (plan.dual is not None) == (family == "dual")
