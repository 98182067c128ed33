"""The IPv6 edges of a dual-stack cluster (issue 15) with real packets: racks joined by the router,
the outside world reached through kind's IPv6 masquerade, a LoadBalancer, an external IP and a
NodePort reached from outside hosts over IPv6, a hostNetwork pod on its node's IPv6 address; the
shipped experiment end to end. Every address lives in the testbed's namespaces (the VM's own
interfaces gain none), and teardown leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pandas as pd

from testbed.emu.cluster import EmulatedCluster
from testbed.experiment.load import load_experiment
from testbed.experiment.run import run_experiment
from testbed.plan.build import plan_cluster
from testbed.plan.edges6 import lb_announcers6
from testbed.report import build_report
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .conftest import ROOT
from .test_dual_stack import _ask as ask
from .test_dual_stack import _ping

TOPOLOGY = os.path.join(ROOT, "topologies", "dual-stack-edges.yaml")
MANIFESTS = [
    os.path.join(ROOT, "manifests", name)
    for name in ("quickstart-app.yaml", "dual-stack-services.yaml", "dual-stack-edges.yaml", "pod-networking.yaml")
]


def _ask(netns: str, address: str, port: int) -> dict:
    return ask(netns, address, port, socket.SOCK_STREAM)


def _root_ipv6() -> str:
    return subprocess.run(["ip", "-6", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout


def test_racks_outside_world_and_service_addresses_over_ipv6(no_leftovers):
    plan = plan_cluster(load_topology(TOPOLOGY), load_manifests(MANIFESTS))
    dual, services = plan.dual, plan.services
    assert dual is not None and services is not None
    root_before = _root_ipv6()
    laptop, internet = (next(x for x in plan.externals if x.name == n) for n in ("laptop", "example-com"))
    web = next(p for p in plan.pods if p.name.startswith("web-"))
    echo = {p.name for p in plan.pods if p.name.startswith("echo-")}
    with EmulatedCluster(plan) as c:
        laptop_ns, internet_ns = c.netns_path(laptop.key), c.netns_path(internet.key)
        # racks: the laptop's rack and the internet reach the nodes' rack and each other via the router
        assert _ping(laptop_ns, dual.nodes[1].host_ip) == 0
        assert _ping(internet_ns, dual.externals["laptop"]) == 0
        assert _ping(laptop_ns, dual.racks[0].router_ip) == 0
        # egress: the outside server sees the pod's node (kind's IPv6 masquerade), as in IPv4
        reply = _ask(c.pod_netns_path(web), dual.externals["example-com"], 80)
        assert reply["peer_ip"] == dual.node(web.node).host_ip, reply
        # ...and so does a host of the underlay: kind masquerades whatever leaves the IPv6 pod subnet
        reply = _ask(c.pod_netns_path(web), dual.externals["laptop"], 8000)
        assert reply["peer_ip"] == dual.node(web.node).host_ip, reply
        # ...but not a pod: pod to pod over IPv6 stays NAT-free
        other = next(p for p in plan.pods if p.name.startswith("web-") and p.node != web.node)
        reply = _ask(c.pod_netns_path(web), dual.pods[other.key], 80)
        assert reply["peer_ip"] == dual.pods[web.key], reply
        # the LoadBalancer's IPv6 address, from both outside hosts, answered by an echo pod
        (lb6,) = dual.lb_ingress["default/echo-lb"]
        holder = lb_announcers6(plan, dual.lb_ingress)[lb6]
        for ns in (laptop_ns, internet_ns):
            assert _ask(ns, lb6, 80)["pod"] in echo
        # the external IPv6 address, routed by the outside hosts and the router to a node
        (ext6,) = dual.external_ips["default/echo-external"]
        for ns in (laptop_ns, internet_ns):
            assert _ask(ns, ext6, 8080)["pod"] in echo
        # a NodePort on every node's IPv6 address, from the internet
        for node in dual.nodes:
            assert _ask(internet_ns, node.host_ip, 30080)["pod"] in echo
        # a hostNetwork pod answers on its node's IPv6 address
        metrics = next(p for p in plan.pods if p.name == "node-metrics")
        assert _ask(c.pod_netns_path(web), dual.host_network[metrics.key], 9100)["pod"] == "node-metrics"
        # the LoadBalancer address lives on its node only, never as its node's source
        held = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                c.netns_path(plan.node(holder).key).rsplit("/", 1)[1],
                "ip",
                "-6",
                "addr",
                "show",
                "dev",
                "eth0",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"{lb6}/128" in held and "deprecated" in held
        # nothing of this reached the VM's own interfaces
        assert _root_ipv6() == root_before
        assert "2001:db8" not in _root_ipv6() and "fd00:192:168" not in _root_ipv6()


def test_the_dual_stack_edges_experiment(tmp_path, no_leftovers):
    run_dir, passed = run_experiment(
        load_experiment(os.path.join(ROOT, "experiments", "dual-stack-edges.yaml")),
        str(tmp_path),
        progress=lambda _m: None,
    )
    build_report(run_dir)
    assert passed, open(os.path.join(run_dir, "summary.md")).read()
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    meta = json.load(open(os.path.join(run_dir, "run.json")))
    assert meta["nat_violations"] == 0 and meta["as_expected"] == meta["probes"] == len(rows)
    v6 = rows[rows["family"] == "IPv6"]
    egress = v6[v6["group"] == "pods-to-internet-v6"]
    assert len(egress) and (egress["seen_src_ip"] != egress["src_ip"]).all()  # masqueraded...
    assert egress["seen_src_ip"].str.startswith("fd00:192:168:1::").all()  # ...to the node's IPv6 address
    assert set(v6["communication"]) >= {
        "pod-to-outside (egress, SNAT expected)",
        "pod-to-external (kind's IPv6 masquerade, SNAT expected)",
        "external-to-service (loadBalancer)",
        "external-to-service (externalIP)",
        "external-to-service (nodePort)",
    }
    report = open(os.path.join(run_dir, "report.md")).read()
    assert "## NAT-free addressing per address family" in report and "### IPv6" in report
