"""Issue 15's done-when over IPv6, on real packets: for ipFamily ipv6 and dual, in every routing
mode (host-gw, cloud-routes, vxlan, bgp) and both kube-proxy modes (iptables, nftables), a small
cluster (topologies/ipv6.yaml or topologies/dual-stack.yaml: three nodes and the laptop) passes
experiments/ipv6-matrix.yaml: the quickstart's matrix (container-to-container over ::1, pod-to-pod
on one node and across nodes, node-to-pod, over TCP, UDP and SCTP, NAT-free) and the Services
experiment's checks (a ClusterIP by address and by DNS name keeping the pod's address, a NodePort
and a LoadBalancer SNATed to a node, a LoadBalancer with externalTrafficPolicy Local keeping the
laptop's), every probe over IPv6. Teardown leaves nothing behind (no_leftovers: namespaces, links,
processes, bird2 daemons included).

Each mode's IPv6 kernel objects are checked where they are built (test_ipv6_only.py,
test_ipv6_routes.py, test_dual_stack_routing.py); this is the campaign over all 16 variants, one
cluster each (~5 s apiece on a quiet VM).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os

import pandas as pd
import pytest

from testbed.experiment.expand import node_addresses
from testbed.experiment.family import ipv6_addresses
from testbed.experiment.load import load_experiment
from testbed.experiment.run import run_experiment
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .conftest import ROOT

EXPERIMENT = os.path.join(ROOT, "experiments", "ipv6-matrix.yaml")
BASE = {"ipv6": "ipv6.yaml", "dual": "dual-stack.yaml"}
GROUPS = {
    "container-to-container",
    "pod-to-pod",
    "node-to-pod",
    "pod-to-clusterip",
    "pod-to-dns-name",
    "laptop-to-nodeport",
    "laptop-to-loadbalancer",
    "laptop-to-loadbalancer-local",
}


def variant(tmp_path, family: str, routing: str, proxy: str) -> str:
    """The family's topology with `routing` and `kubeProxyMode` set (a file under tmp_path)."""
    with open(os.path.join(ROOT, "topologies", BASE[family]), encoding="utf-8") as handle:
        text = handle.read()
    assert "kubeProxyMode" not in text and "\nrouting:" not in text
    text = text.replace("networking:\n", f"networking:\n  kubeProxyMode: {proxy}\n", 1) + f"routing: {routing}\n"
    path = tmp_path / f"{family}-{routing}-{proxy}.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("proxy", ["iptables", "nftables"])
@pytest.mark.parametrize("routing", ["host-gw", "cloud-routes", "vxlan", "bgp"])
@pytest.mark.parametrize("family", ["ipv6", "dual"])
def test_quickstart_matrix_and_services_over_ipv6(tmp_path, no_leftovers, family, routing, proxy):
    topology = variant(tmp_path, family, routing, proxy)
    exp = dataclasses.replace(load_experiment(EXPERIMENT), topology=topology)
    plan = plan_cluster(load_topology(topology), load_manifests(exp.manifests), seed=exp.seed)
    assert (plan.routing, plan.kube_proxy_mode) == (routing, proxy)
    assert (plan.dual is not None) == (family == "dual") and (":" in plan.pod_subnet) == (family == "ipv6")
    run_dir, passed = run_experiment(exp, str(tmp_path / "results"), progress=lambda _m: None)
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    meta = json.load(open(os.path.join(run_dir, "run.json"), encoding="utf-8"))
    bad = rows[~rows["outcome_ok"] | (rows["nat_free"] == False)]  # noqa: E712 (a nullable column)
    assert passed, bad[["group", "src_name", "dst_ip", "protocol", "outcome", "seen_src_ip", "error"]].head(8)
    assert meta["as_expected"] == meta["probes"] == len(rows) > 150 and meta["nat_violations"] == 0
    assert set(rows["group"]) == GROUPS
    # every probe went over IPv6, to IPv6 addresses (a DNS name resolved to its AAAA record)
    assert set(rows["family"]) == {"IPv6"}
    assert all(ipaddress.ip_address(ip).version == 6 for ip in rows["dst_ip"])
    assert set(rows[rows["step"] == "connectivity"]["protocol"]) == {"TCP", "UDP", "SCTP"}
    # NAT-free where the model says so: a pod's server sees the sender pod's own IPv6 address,
    # a node's the address its node sends from (HOST-IP, or its cni0/VTEP address: nat_free)
    direct = rows[rows["group"].isin(["pod-to-pod", "pod-to-clusterip", "pod-to-dns-name"])]
    assert len(direct[direct["communication"].str.contains("across nodes")]) > 0
    assert (direct["seen_src_ip"] == direct["src_ip"]).all()
    assert (rows[rows["group"] == "node-to-pod"]["nat_free"] == True).all()  # noqa: E712
    laptop = rows[rows["group"] == "laptop-to-loadbalancer-local"]
    assert (laptop["seen_src_ip"] == laptop["src_ip"]).all() and ":" in laptop["src_ip"].iat[0]
    # SNAT to a node: its HOST-IP, cni0 or (vxlan) VTEP address, IPv6 ones
    twin = ipv6_addresses(plan)
    node_ips = {twin.get(a, a) for a in node_addresses(plan)}
    snat = rows[rows["group"].isin(["laptop-to-nodeport", "laptop-to-loadbalancer"])]
    assert set(snat["seen_src_ip"]) <= node_ips and all(":" in a for a in node_ips)
