"""A probe group's default family is the cluster's primary one (issue 15's last gap in experiments).

kubectl shows a pod's podIP as podIPs[0]: IPv6 in an IPv6-first dual-stack cluster and in a
single-stack IPv6 one. A group without `family` now probes over that family (a scapy group with
a `sourceIP`: that address's family); an explicit `family` is kept. IPv4 and IPv4-first clusters
send exactly what they did, checked over every group of every shipped experiment.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import pathlib

import pytest

from testbed.errors import SpecError
from testbed.experiment.expand import expand
from testbed.experiment.load import load_experiment
from testbed.experiment.model import Endpoints, PodSelection, ProbeGroup, ServiceTarget
from testbed.plan.build import plan_cluster
from testbed.spec.selectors import LabelSelector
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .test_experiment_check import _write

REPO = pathlib.Path(__file__).resolve().parents[2]
APP = REPO / "manifests" / "quickstart-app.yaml"
SERVICES = REPO / "manifests" / "dual-stack-services.yaml"


def _plan(topology: str, *manifests: pathlib.Path):
    return plan_cluster(
        load_topology(str(REPO / "topologies" / topology)), load_manifests([str(m) for m in manifests]), seed=1
    )


def _versions(probes) -> set[int]:
    return {ipaddress.ip_address(p.dst_ip).version for p in probes} | {
        ipaddress.ip_address(p.src.ip).version for p in probes if p.src.ip
    }


WEB = Endpoints(pods=PodSelection(selector=LabelSelector.of({"app": "web"})))
P2P = ProbeGroup("p2p", Endpoints(pods=PodSelection()), Endpoints(pods=PodSelection()), protocols=("TCP",))


def test_an_ipv6_first_cluster_probes_over_ipv6_by_default():
    plan = _plan("dual-stack-v6first.yaml", APP, SERVICES)
    default = expand(plan, P2P)
    assert default and _versions(default) == {6}
    assert default == expand(plan, dataclasses.replace(P2P, family="IPv6"))
    # kept when given: an explicit IPv4 group is the IPv4 half
    assert _versions(expand(plan, dataclasses.replace(P2P, family="IPv4"))) == {4}
    # the default SingleStack Service is IPv6 there: reachable without saying so
    single = expand(plan, ProbeGroup("svc", WEB, Endpoints(service=ServiceTarget("echo-single"))))
    assert {p.dst_ip for p in single} == {plan.dual.services["default/echo-single"].cluster_ips[0]}
    assert ":" in next(iter({p.dst_ip for p in single}))


def test_ipv4_first_and_ipv4_clusters_keep_ipv4():
    for plan in (_plan("dual-stack.yaml", APP, SERVICES), _plan("three-nodes.yaml", APP)):
        default = expand(plan, P2P)
        assert default and _versions(default) == {4}
        assert default == expand(plan, dataclasses.replace(P2P, family="IPv4"))


def test_a_single_stack_ipv6_cluster_defaults_to_ipv6_and_refuses_ipv4():
    plan = _plan("ipv6.yaml", APP)
    default = expand(plan, P2P)
    assert default and _versions(default) == {6}
    assert default == expand(plan, dataclasses.replace(P2P, family="IPv6"))
    with pytest.raises(SpecError) as info:
        expand(plan, dataclasses.replace(P2P, family="IPv4"))
    assert "IPv4 (given, or a sourceIP's) in a single-stack IPv6 cluster" in info.value.problems[0].message


def test_a_sourceip_without_family_chooses_its_family():
    plan = _plan("dual-stack.yaml", APP)
    crafted = dataclasses.replace(P2P, method="scapy", protocols=("UDP",))
    v6 = expand(plan, dataclasses.replace(crafted, source_ip="fd00:10:244::99"))
    assert v6 and _versions(v6) == {6} and {p.source_ip for p in v6} == {"fd00:10:244::99"}
    v4 = expand(plan, dataclasses.replace(crafted, source_ip="10.244.9.9"))
    assert v4 and {ipaddress.ip_address(p.dst_ip).version for p in v4} == {4}
    with pytest.raises(SpecError):  # an IPv6 source on an IPv4 cluster: no IPv6 to send over
        expand(_plan("three-nodes.yaml", APP), dataclasses.replace(crafted, source_ip="fd00::9"))


def _experiment(tmp_path: pathlib.Path, topology: str, group: str) -> str:
    return _write(tmp_path, f"- name: s\n  probes: [{group}]\n", topology=str(REPO / "topologies" / topology))


def _refused(path: str) -> list[str]:
    with pytest.raises(SpecError) as err:
        load_experiment(path)
    return str(err.value).splitlines()


def test_experiments_load_without_family_and_refuse_what_has_no_address(tmp_path):
    group = "{name: g, from: {pods: all}, to: {pods: all}, protocols: [TCP]}"
    exp = load_experiment(_experiment(tmp_path, "dual-stack-v6first.yaml", group))
    assert exp.steps[0].probes[0].family == ""  # resolved against the cluster when expanded
    bad = "{name: g, from: {pods: all}, to: {pods: all}, family: IPv4}"
    lines = _refused(_experiment(tmp_path, "ipv6.yaml", bad))
    assert len(lines) == 1 and "probe group 'g'" in lines[0] and "single-stack IPv6 cluster" in lines[0], lines
    for value, fragment in (
        ("''", "family: must be IPv4 or IPv6, got ''"),
        ("ipv6", "family: must be IPv4 or IPv6, got 'ipv6'"),
    ):
        path = _experiment(
            tmp_path, "dual-stack.yaml", f"{{name: g, from: {{pods: all}}, to: {{pods: all}}, family: {value}}}"
        )
        assert any(fragment in line for line in _refused(path))
    scapy = "{name: g, from: {pods: all}, to: {pods: all}, method: scapy, sourceIP: nope}"
    lines = _refused(_experiment(tmp_path, "dual-stack.yaml", scapy))
    assert any("sourceIP: 'nope' is not an IPv4 address (nor an IPv6 one)" in line for line in lines), lines


def _shipped_groups():
    """Every probe group of the shipped experiments that names no family, with its plan."""
    for path in sorted((REPO / "experiments").glob("*.yaml")):
        exp = load_experiment(str(path), check=False)
        groups = [g for s in exp.steps for g in (*s.probes, *(s.during.probes if s.during else ())) if not g.family]
        if groups:
            yield path.name, exp, groups


def test_shipped_experiments_send_what_they_did():
    """Before this change a group without `family` was IPv4, which a single-stack IPv6 cluster
    sent over IPv6 anyway: every shipped group of an IPv4, IPv4-first or IPv6 cluster expands
    exactly so (on the experiment's first plan; a group whose targets appear only later is
    skipped, the same error either way). The IPv6-first experiment's groups without a family
    are its primary-family ones: they expand as `family: IPv6`."""
    seen, primary6 = 0, set()
    for name, exp, groups in _shipped_groups():
        plan = plan_cluster(load_topology(exp.topology), load_manifests(exp.manifests), seed=exp.seed)
        v6first = plan.dual is not None and plan.dual.families[0] == "IPv6"
        before = "IPv6" if ":" in plan.pod_subnet or v6first else "IPv4"
        for g in groups:
            light = dataclasses.replace(g, repeat=1, expect=dataclasses.replace(g.expect, outcome="any"))
            try:
                now = expand(plan, light)
            except SpecError:
                continue
            assert now == expand(plan, dataclasses.replace(light, family=before)), f"{name}: {g.name}"
            seen += 1
            primary6 |= {g.name} if v6first else set()
    assert seen > 100 and primary6 == {"single-stack-v6", "single-stack-dns-v6"}
