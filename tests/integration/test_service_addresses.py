"""Service addresses reached from outside the cluster, with real packets in both modes (issue 19 item 5).

The laptop reaches a Service's externalIP (198.51.100.7, outside the underlay: routed by the
emulated cloud to a node, plan/service_routes.py) and sees its connection masqueraded by the
node (externalTrafficPolicy Cluster); it reaches a ClusterIP because the topology advertises
the Service range (advertiseServiceSubnet); both of a LoadBalancer's two ingress addresses
(MetalLB's loadBalancerIPs annotation) answer. Without the routes each probe would time out.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess

import pytest

from testbed.emu.cluster import EmulatedCluster
from testbed.experiment.expand import expand
from testbed.experiment.model import Endpoints, Expectation, ProbeGroup, ServiceTarget
from testbed.experiment.run import probe_rows
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .conftest import ROOT

EXTERNAL_IP = "198.51.100.7"
LB_IPS = ("192.168.1.210", "192.168.1.211")
TOPOLOGY = os.path.join(ROOT, "topologies", "service-addresses.yaml")
APP = os.path.join(ROOT, "manifests", "service-addresses.yaml")


@pytest.fixture(params=["iptables", "nftables"])
def cluster(request, no_leftovers):
    spec = dataclasses.replace(load_topology(TOPOLOGY), kube_proxy_mode=request.param)
    plan = plan_cluster(spec, load_manifests([APP]), seed=1)
    with EmulatedCluster(plan) as c:
        yield c


def rows(c, name, service, via):
    group = ProbeGroup(
        name,
        Endpoints(hosts=("laptop",)),
        Endpoints(service=ServiceTarget(service, via=via)),
        repeat=3,
        timeout=1.0,
        expect=Expectation("connected", "node"),
    )
    return probe_rows(c, "t", "s", expand(c.plan, group))


def test_external_ip_lb_addresses_and_cluster_ips_from_outside(cluster):
    c = cluster
    svc = c.plan.services.service("default", "echo")
    assert c.plan.services.service("default", "echo-lb").load_balancer_ingress == LB_IPS
    laptop = next(e for e in c.plan.externals if e.name == "laptop")
    table = subprocess.run(
        ["ip", "-n", c.netns(laptop.key), "route", "show"], capture_output=True, text=True, check=True
    ).stdout
    worker = next(n for n in c.plan.nodes if n.role == "worker")  # the control plane is excluded from LBs
    assert f"{EXTERNAL_IP} via {worker.host_ip}" in table and f"{c.plan.service_subnet} via" in table, table
    node_addresses = {a for n in c.plan.nodes for a in (n.host_ip, n.gateway)}
    for name, service, via, dsts in (
        ("external-ip", "echo", "externalIP", {EXTERNAL_IP}),
        ("cluster-ip", "echo", "clusterIP", {svc.cluster_ip}),
        ("lb", "echo-lb", "loadBalancer", set(LB_IPS)),
    ):
        got = rows(c, name, service, via)
        assert {r["dst_ip"] for r in got} == dsts
        bad = [(r["dst_ip"], r["outcome"], r["seen_src_ip"]) for r in got if r["outcome"] != "connected"]
        assert not bad, (name, bad)
        assert {r["seen_src_ip"] for r in got} <= node_addresses, "masqueraded by the node (policy Cluster)"
