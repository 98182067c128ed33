"""Services with real packets in both kube-proxy modes: protocols, affinity, hairpin, DNS,
externalTrafficPolicy Local, no endpoints, and endpoints following scaling."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest

from testbed.emu.cluster import EmulatedCluster
from testbed.experiment.changes import Scale, apply_action
from testbed.experiment.expand import expand
from testbed.experiment.model import Endpoints, Expectation, PodSelection, ProbeGroup, ServiceTarget
from testbed.experiment.run import probe_rows
from testbed.netns import in_netns
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests
from testbed.traffic.dnsquery import resolve_many

from .conftest import ROOT

APP = os.path.join(ROOT, "manifests", "services-features.yaml")


def _group(name, source, service, via="clusterIP", repeat=1, expect=Expectation(), **kw):
    return ProbeGroup(
        name,
        source,
        Endpoints(service=ServiceTarget(service, via=via, **kw)),
        repeat=repeat,
        expect=expect,
        timeout=0.7,
    )


def _rows(c, group):
    return probe_rows(c, "t", "s", expand(c.plan, group))


def _nodes_to_echo(c, name):
    """Every node -> Service echo port 80, 10 times: the rows."""
    group = ProbeGroup(
        name,
        Endpoints(nodes=()),
        Endpoints(service=ServiceTarget("echo")),
        ports=(80,),
        repeat=10,
        timeout=0.7,
        expect=Expectation("connected", "any"),
    )
    return _rows(c, group)


@pytest.fixture(params=["three-nodes.yaml", "three-nodes-nftables.yaml"], ids=["iptables", "nftables"])
def cluster(request, no_leftovers):
    spec = load_topology(os.path.join(ROOT, "topologies", request.param))
    manifests = load_manifests([APP])
    plan = plan_cluster(spec, manifests, seed=3)
    with EmulatedCluster(plan) as c:
        c.spec, c.manifests = spec, manifests
        yield c


def test_services_in_both_modes(cluster):
    c = cluster
    echo = [p for p in c.plan.pods if p.labels.get("app") == "echo"]
    src = Endpoints(pods=PodSelection(names=(echo[0].name,)))
    # Every protocol through the ClusterIP, DNATed to an endpoint, the pod's own address kept.
    rows = _rows(c, _group("all", src, "echo", repeat=30))
    assert {r["protocol"] for r in rows} == {"TCP", "UDP", "SCTP"}
    bad = [(r["protocol"], r["outcome"], r["error"]) for r in rows if r["outcome"] != "connected"]
    assert not bad, bad[:6]
    others = [r for r in rows if r["answered_by"] != f"default/{echo[0].name}"]
    assert others and all(r["seen_src_ip"] == echo[0].ip for r in others)  # no NAT pod -> Service
    # Hairpin: when the Service sends the pod to itself, kube-proxy masquerades (to cni0's address).
    hairpin = [r for r in rows if r["answered_by"] == f"default/{echo[0].name}"]
    assert hairpin, "30 x 3 requests never reached the sender itself"
    gateway = c.plan.node(echo[0].node).gateway
    assert all(r["seen_src_ip"] == gateway for r in hairpin)
    # Spread over the 3 endpoints.
    assert len({r["answered_by"] for r in rows if r["protocol"] == "TCP"}) == 3
    # sessionAffinity ClientIP: one endpoint for every request of one client.
    sticky = _rows(c, _group("sticky", src, "echo-sticky", repeat=20))
    assert len({r["answered_by"] for r in sticky}) == 1 and all(r["outcome"] == "connected" for r in sticky)
    # A Service without endpoints is rejected, not left to time out.
    nobody = _rows(c, _group("nobody", src, "nobody", expect=Expectation("refused", "any")))
    assert [r["outcome"] for r in nobody] == ["refused"]


def test_dns_records(cluster):
    c = cluster
    pod = [p for p in c.plan.pods if p.labels.get("app") == "echo"][0]
    dns_ip = c.plan.services.service("kube-system", "kube-dns").cluster_ip
    assert dns_ip == "10.96.0.10"
    ns = c.netns_path(pod.key)
    names = [
        "echo.default.svc.cluster.local",
        "echo-headless.default.svc.cluster.local",
        "nothing.default.svc.cluster.local",
    ]
    got = resolve_many([(ns, n, dns_ip) for n in names])
    assert got[(ns, names[0])] == [c.plan.services.service("default", "echo").cluster_ip]
    assert sorted(got[(ns, names[1])]) == sorted(p.ip for p in c.plan.pods if p.labels.get("app") == "echo")
    assert got[(ns, names[2])] == []
    # ExternalName: a CNAME to spec.externalName.
    from scapy.layers.dns import DNS, DNSQR

    with in_netns(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    s.sendto(bytes(DNS(id=7, rd=1, qd=DNSQR(qname="docs.default.svc.cluster.local"))), (dns_ip, 53))
    answer = DNS(s.recv(2048))
    s.close()
    assert any(rr.type == 5 and rr.rdata.rstrip(b".") == b"www.example.org" for rr in answer.an)
    # The pod's resolv.conf carries Kubernetes' search path, as `ip netns exec` shows it.
    with open(f"/etc/netns/{c.netns(pod.key)}/resolv.conf") as h:
        text = h.read()
    assert (
        "search default.svc.cluster.local svc.cluster.local cluster.local" in text and "nameserver 10.96.0.10" in text
    )


def test_external_traffic_policy_local_and_endpoints_follow_scaling(cluster):
    c = cluster
    laptop = Endpoints(hosts=("laptop",))
    local = {p.node for p in c.plan.pods if p.labels.get("app") == "echo"}
    rows = _rows(
        c, _group("local", laptop, "echo-local", via="nodePort", repeat=3, expect=Expectation("connected", "sender"))
    )
    for r in rows:
        node = next(n for n in c.plan.nodes if n.host_ip == r["dst_ip"])
        if node.name in local:  # a node with a local endpoint answers and keeps the client's address
            assert r["outcome"] == "connected" and r["seen_src_ip"] == "192.168.1.10"
            assert r["answered_by"].split("/")[1] in {p.name for p in c.plan.pods_on(node.name)}
        else:  # the others drop it (upstream: KUBE-EXT-... has no endpoint to jump to)
            assert r["outcome"] in ("timeout", "refused")
    # internalTrafficPolicy Local: a node reaches only its own endpoints, and none when it has none.
    node_rows = _rows(
        c,
        ProbeGroup(
            "itp",
            Endpoints(nodes=()),
            Endpoints(service=ServiceTarget("echo-node-local")),
            repeat=5,
            timeout=0.5,
            expect=Expectation("any", "any"),
        ),
    )
    for r in node_rows:
        if r["src_node"] in local:
            assert r["outcome"] == "connected"
            assert r["answered_by"].split("/")[1] in {p.name for p in c.plan.pods_on(r["src_node"])}
        else:
            assert r["outcome"] == "timeout"  # kube-proxy drops: no local endpoint
    assert any(r["src_node"] not in local for r in node_rows)
    # Scale to 1: the endpoints and every node's rules follow, without rebuilding anything.
    manifests, plan = apply_action(Scale("Deployment", "echo", 1), c.spec, c.manifests, c.plan)
    c.apply(plan)
    c.manifests = manifests
    pod = [p for p in c.plan.pods if p.labels.get("app") == "echo"]
    assert len(pod) == 1
    rows = _nodes_to_echo(c, "one")
    assert len(rows) == 30 and {r["answered_by"] for r in rows} == {f"default/{pod[0].name}"}


def _kube_proxy_dump(c, node, family: str = "ip"):
    """What the node's kernel holds of kube-proxy, in an order that does not depend on the order
    things were added: the KUBE-* chains and rules of iptables-save (no counters); or `nft -j
    list table <family> kube-proxy` without handles, as {chain: [rules]} and {set or map: sorted elements}."""
    inside = ["ip", "netns", "exec", c.netns(node.key)]
    if c.plan.kube_proxy_mode != "nftables":
        out = subprocess.run(inside + ["iptables-save"], capture_output=True, text=True, check=True).stdout
        return "\n".join(l for l in out.splitlines() if "KUBE-" in l and not l.startswith("#"))
    argv = inside + ["nft", "-j", "list", "table", family, "kube-proxy"]
    items = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)["nftables"]
    chains, containers = {}, {}
    for item in items:
        (kind, body), *_ = item.items()
        body = {k: v for k, v in body.items() if k != "handle"}
        if kind == "chain":
            chains.setdefault(body["name"], [])
        elif kind == "rule":
            chains.setdefault(body["chain"], []).append(json.dumps(body, sort_keys=True))
        elif kind in ("set", "map"):
            elems = sorted(json.dumps(e, sort_keys=True) for e in body.pop("elem", []))
            containers[body["name"]] = (json.dumps(body, sort_keys=True), elems)
    return chains, containers


def test_partial_syncs_leave_what_a_full_sync_leaves(cluster):
    """Scale echo down (its endpoint chains deleted) and up again: each kube-proxy sync is
    partial, and every node's kernel then holds exactly what a full reload of the same rules gives."""
    from testbed.emu.controllers import KubeProxy
    from testbed.emu.rules import iptables_restore, nft_load
    from testbed.kubeproxy import render

    c = cluster
    proxy = c.controller(KubeProxy)
    assert set(proxy.kinds.values()) == {"full"}  # the build
    for action in (Scale("Deployment", "echo", 1), Scale("Deployment", "echo", 3)):
        c.manifests, plan = apply_action(action, c.spec, c.manifests, c.plan)
        c.apply(plan)
        assert set(proxy.kinds.values()) == {"partial"}, proxy.kinds
    dumps = {n.name: _kube_proxy_dump(c, n) for n in c.plan.nodes}
    for node in c.plan.nodes:
        ruleset = c.plan.kube_proxy_rulesets[node.name]
        ns = c.netns(node.key)
        if c.plan.kube_proxy_mode == "nftables":
            nft_load(c.runner, ns, render(ruleset))  # deletes the table and writes it whole
        else:
            iptables_restore(c.runner, ns, render(ruleset, ruleset))  # every chain flushed and refilled
            chains = {l[1:].split()[0] for l in dumps[node.name].splitlines() if l.startswith(":KUBE-")}
            assert chains == {n for n in ruleset.chain_names() if n.startswith("KUBE-")}, "stale or missing chains"
        assert _kube_proxy_dump(c, node) == dumps[node.name], node.name
    rows = _nodes_to_echo(c, "after")
    assert len({r["answered_by"] for r in rows}) == 3 and all(r["outcome"] == "connected" for r in rows)
