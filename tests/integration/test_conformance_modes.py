"""Issue 15's done-when for NetworkPolicy, on real packets: the generated conformance suite over
IPv6 in a single-stack IPv6 cluster (`--family ipv6`) and over both families in a dual-stack one
(`--family dual`: both truth tables of every step), in every routing mode (host-gw, cloud-routes,
vxlan, bgp) and both kube-proxy modes (iptables, nftables): the model cluster of
testbed/conformance/modes.py in each of the 16 variants runs the first 19 cases (one of every
family of case: deny, allow-all, selectors, ipBlock, ports, updates, relabels, sequences, random
ones...) with 0 mismatches, every blocked verdict known from a drop log, and teardown leaves
nothing behind. benchmarks/conformance_modes.py runs all 325 cases in each (README's figures).
The tiered suite (`--tiered`, the ClusterNetworkPolicy tiers) too: each variant runs its slice
(conformance/modes.py tiered_slice: 2 or 3 of the 40 cases, every case in one variant), and the
benchmark's `--tiered` runs it whole in the variants it is given.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys

import pytest

from testbed.conformance.generator import generate_cases
from testbed.conformance.modes import FAMILIES, PROXIES, ROUTINGS, mode_topology, tiered_slice
from testbed.conformance.resources import MODEL
from testbed.conformance.run import run_conformance
from testbed.conformance.tiered import tiered_cases
from testbed.plan.build import plan_cluster
from testbed.plan.ipv6 import is_ipv6
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .conftest import ROOT

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


@pytest.mark.parametrize("proxy", PROXIES)
@pytest.mark.parametrize("routing", ROUTINGS)
@pytest.mark.parametrize("family", FAMILIES)
def test_tiered_conformance_over_ipv6_in_every_mode(tmp_path, no_leftovers, family, routing, proxy):
    """This variant's slice of the tiered suite over IPv6 (dual: both families), 0 mismatches,
    every blocked verdict from a drop log (the twin table's tier chains log as the IPv4 ones)."""
    names = tiered_slice(family, routing, proxy, [c.name for c in tiered_cases()])
    topology = tmp_path / f"{family}-{routing}-{proxy}.yaml"
    topology.write_text(mode_topology(family, routing, proxy), encoding="utf-8")
    run_dir, passed = run_conformance(str(topology), str(tmp_path / "results"), tiered=True, family=family, names=names)
    meta = json.load(open(os.path.join(run_dir, "conformance.json"), encoding="utf-8"))
    assert passed, open(os.path.join(run_dir, "conformance.md"), encoding="utf-8").read()[:4000]
    counts, evidence = meta["counts"], meta["evidence"]
    assert meta["family"] == family and counts["cases"] == counts["passed"] == len(names) >= 2
    assert counts["mismatches"] == 0 and counts["failed"] == counts["error"] == 0
    assert counts["probes"] == counts["steps"] * 486 * (2 if family == "dual" else 1)
    assert evidence["drop-log"] > 0 and evidence["timeout"] == 0
    with open(os.path.join(run_dir, "conformance.xml"), encoding="utf-8") as handle:
        junit = handle.read()
    assert 'name="netpol-tiered-conformance"' in junit and all(f'name="{n}"' in junit for n in names)


def test_the_benchmark_runs_the_tiered_suite(tmp_path, no_leftovers):
    """benchmarks/conformance_modes.py --tiered: one variant, its first tiered case, one line."""
    argv = [sys.executable, os.path.join(ROOT, "benchmarks", "conformance_modes.py"), "--tiered", "--limit", "1"]
    argv += ["--family", "ipv6", "--routing", "host-gw", "--proxy", "nftables"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=True).stdout.splitlines()
    assert out[0].startswith("# tiered conformance over IPv6"), out
    (line,) = [x for x in out if not x.startswith("#")]
    assert line.split()[:5] == ["ipv6", "host-gw", "nftables", "tiered", "PASS"], line
    assert " 1 cases, 486 probes, 0 mismatches, 0 failed; " in line and " 0 timeout;" in line, line
