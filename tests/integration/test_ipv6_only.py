"""Single-stack IPv6 clusters (issue 15, spec/ipv6.py) with real packets.

topologies/ipv6.yaml: pods, nodes and the laptop have IPv6 addresses only — no IPv4 address on
any emulated interface, checked in the kernel — and the pod network, Services (ClusterIP through
ip6tables, NodePort, the cluster DNS's AAAA records from the resolv.conf's IPv6 kube-dns) and a
NetworkPolicy with an IPv6 ipBlock work over IPv6, NAT-free where the network model says so. The
experiment experiments/ipv6.yaml (the quickstart's matrix over TCP and UDP, the Services, the
policy) passes, and teardown leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess

import pandas as pd
import pytest

from testbed.emu.cluster import EmulatedCluster
from testbed.experiment.load import load_experiment
from testbed.experiment.run import run_experiment
from testbed.plan.build import plan_cluster, replan
from testbed.plan.network import node_source_ip
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .conftest import ROOT
from .test_dual_stack import _ask, _replies  # TCP or UDP to an address from a namespace, the agent's reply decoded

TOPOLOGY = os.path.join(ROOT, "topologies", "ipv6.yaml")
FILES = [os.path.join(ROOT, "manifests", f) for f in ("quickstart-app.yaml", "ipv6-services.yaml")]


def _ip(netns_path: str, *argv: str) -> str:
    name = os.path.basename(netns_path)
    return subprocess.run(["ip", "-n", name, *argv], capture_output=True, text=True, check=True).stdout


def _spread(src: str, ip: str, echo: dict, client_ip: str) -> None:
    """A Service's TCP port from `src`: spread over the echo endpoints, the client's own address seen."""
    seen = set()
    for reply in _replies(lambda: _ask(src, ip, 80, socket.SOCK_STREAM), lambda got: len({r["pod"] for r in got}) >= 2):
        assert reply["local_ip"] == echo[reply["pod"]].ip and reply["peer_ip"] == client_ip
        seen.add(reply["pod"])
    assert len(seen) >= 2, seen


def test_ipv6_only_cluster_pods_services_dns_policy(no_leftovers):
    spec = load_topology(TOPOLOGY)
    manifests = load_manifests(FILES)
    plan = plan_cluster(spec, manifests)
    assert plan.services is not None
    pods = {p.name: p for p in plan.pods}
    echo = {p.name: p for p in plan.pods if p.labels.get("app") == "echo"}
    client = pods["client"]
    with EmulatedCluster(plan) as c:
        # no IPv4 anywhere: pods, nodes, the laptop (loopback's 127.0.0.1 aside, as in any netns)
        members = [c.pod_netns_path(p) for p in plan.pods] + [c.node_netns_path(n) for n in plan.nodes]
        members.append(c.netns_path(plan.externals[0].key))
        for path in members:
            assert [line for line in _ip(path, "-4", "-o", "addr").splitlines() if " lo " not in line] == [], path
            assert _ip(path, "-4", "route") == "", path
        assert f"inet6 {client.ip}/64" in _ip(c.pod_netns_path(client), "-6", "addr", "show", "dev", "eth0")

        # pod to pod across nodes, TCP and UDP, and node to pod: NAT-free
        src = c.pod_netns_path(client)
        far = next(p for p in echo.values() if p.node != client.node)
        for kind, port, proto in ((socket.SOCK_STREAM, 8080, "TCP"), (socket.SOCK_DGRAM, 5353, "UDP")):
            reply = _ask(src, far.ip, port, kind)
            assert (reply["pod"], reply["protocol"], reply["peer_ip"], reply["local_ip"]) == (
                far.name,
                proto,
                client.ip,
                far.ip,
            )
        node = plan.node(far.node)
        assert _ask(c.node_netns_path(plan.node(client.node)), far.ip, 8080, socket.SOCK_STREAM)["peer_ip"] in (
            plan.node(client.node).host_ip,
            plan.node(client.node).gateway,
        )

        # a ClusterIP through ip6tables: spread over the endpoints, the client's own address seen
        svc = plan.services.service("default", "echo")
        _spread(src, svc.cluster_ip, echo, client.ip)
        assert _ask(src, svc.cluster_ip, 53, socket.SOCK_DGRAM)["pod"] in echo
        # NodePort on a node's IPv6 address from the laptop (SNAT to the node, as in IPv4)
        laptop = c.netns_path(plan.externals[0].key)
        assert _ask(laptop, node.host_ip, 30080, socket.SOCK_STREAM)["pod"] in echo

        # the cluster DNS: resolv.conf names the IPv6 kube-dns; AAAA answers, no A
        kube_dns = plan.services.service("kube-system", "kube-dns").cluster_ip
        resolv = subprocess.run(
            ["ip", "netns", "exec", os.path.basename(src), "cat", "/etc/resolv.conf"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"nameserver {kube_dns}\n" in resolv

        def dig(kind: str, name: str) -> list[str]:
            argv = ["ip", "netns", "exec", os.path.basename(src), "dig", "+short", "+time=2", "+tries=2", kind, name]
            return sorted(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split())

        assert dig("AAAA", "echo.default.svc.cluster.local") == [svc.cluster_ip]
        assert dig("A", "echo.default.svc.cluster.local") == []
        assert dig("AAAA", "echo-headless.default.svc.cluster.local") == sorted(p.ip for p in echo.values())

        # a NetworkPolicy with an IPv6 ipBlock: client allowed, other dropped, nodes allowed
        policy = load_manifests([*FILES, os.path.join(ROOT, "manifests", "ipv6-policy.yaml")])
        with_policy = replan(spec, policy, prev=plan)
        c.apply(with_policy)
        assert _ask(src, far.ip, 8080, socket.SOCK_STREAM)["peer_ip"] == client.ip
        try:
            _ask(c.pod_netns_path(pods["other"]), far.ip, 8080, socket.SOCK_STREAM)
            blocked = False
        except OSError:
            blocked = True
        assert blocked
        assert (
            _ask(c.node_netns_path(plan.nodes[0]), far.ip, 8080, socket.SOCK_STREAM)["peer_ip"] == plan.nodes[0].host_ip
        )

        # scaled on the live cluster: the new pods are IPv6 only too
        bigger = dataclasses.replace(
            policy,
            workloads=tuple(dataclasses.replace(w, replicas=5) if w.ref.name == "web" else w for w in policy.workloads),
        )
        new = replan(spec, bigger, prev=with_policy)
        c.apply(new)
        added = [p for p in new.pods if p.key not in {q.key for q in plan.pods}]
        assert added and all(":" in p.ip for p in added)
        for pod in added:
            assert _ask(src, pod.ip, 80, socket.SOCK_STREAM)["peer_ip"] == client.ip
            assert _ip(c.pod_netns_path(pod), "-4", "route") == ""


def test_ipv6_experiment_passes(tmp_path, no_leftovers):
    run_dir, passed = run_experiment(
        load_experiment(os.path.join(ROOT, "experiments", "ipv6.yaml")), str(tmp_path), progress=lambda _m: None
    )
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    meta = json.load(open(os.path.join(run_dir, "run.json")))
    assert passed and meta["as_expected"] == meta["probes"] == len(rows) > 250 and meta["nat_violations"] == 0
    assert set(rows["family"]) == {"IPv6"}
    assert not rows["dst_ip"].str.contains(r"^\d+\.\d+\.\d+\.\d+$").any()
    assert {"pod-to-service (DNS name)", "external-to-service (nodePort)", "pod-to-pod (across nodes)"} <= set(
        rows["communication"]
    )
    pods = rows[rows["communication"].str.startswith("pod-to-pod") & (rows["step"] == "connectivity")]
    assert len(pods) and (pods["seen_src_ip"] == pods["src_ip"]).all()


def test_ipv6_only_kube_proxy_nftables_mode(no_leftovers):
    """kube-proxy's nftables mode in an ipv6 cluster: the `ip6 kube-proxy` table (and no `ip`
    one) on every node; ClusterIP over TCP and UDP spread over the endpoints NAT-free, NodePort
    from the laptop."""
    spec = dataclasses.replace(load_topology(TOPOLOGY), kube_proxy_mode="nftables")
    plan = plan_cluster(spec, load_manifests(FILES))
    assert plan.services is not None
    pods = {p.name: p for p in plan.pods}
    echo = {p.name: p for p in plan.pods if p.labels.get("app") == "echo"}
    client = pods["client"]
    with EmulatedCluster(plan) as c:
        for node in plan.nodes:
            argv = ["ip", "netns", "exec", os.path.basename(c.node_netns_path(node)), "nft", "list", "tables"]
            tables = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            assert "table ip6 kube-proxy" in tables and "table ip kube-proxy" not in tables, tables
        src = c.pod_netns_path(client)
        svc = plan.services.service("default", "echo")
        _spread(src, svc.cluster_ip, echo, client.ip)
        assert _ask(src, svc.cluster_ip, 53, socket.SOCK_DGRAM)["peer_ip"] == client.ip
        laptop = c.netns_path(plan.externals[0].key)
        assert _ask(laptop, plan.nodes[1].host_ip, 30080, socket.SOCK_STREAM)["pod"] in echo


def test_ipv6_probes_and_tiers_experiment_passes(tmp_path, no_leftovers):
    """experiments/ipv6-probes.yaml: SCTP from the socket prober, scapy's ICMPv6/TCP/UDP/SCTP to open
    and closed ports, iperf3, then the NetworkPolicy and an Admin tier, in a single-stack IPv6 cluster."""
    run_dir, passed = run_experiment(
        load_experiment(os.path.join(ROOT, "experiments", "ipv6-probes.yaml")), str(tmp_path), progress=lambda _m: None
    )
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    meta = json.load(open(os.path.join(run_dir, "run.json")))
    assert passed and meta["as_expected"] == meta["probes"] == len(rows) and meta["nat_violations"] == 0
    assert set(rows["family"]) == {"IPv6"} and rows["dst_ip"].str.contains(":").all()
    kinds = rows[rows["step"] == "probe-kinds"]
    assert set(zip(kinds["method"], kinds["protocol"])) == {
        ("socket", "SCTP"),
        *(("scapy", p) for p in ("ICMP", "TCP", "UDP", "SCTP")),
        ("iperf3", "TCP"),
    }
    sctp = kinds[(kinds["method"] == "socket") & (kinds["outcome"] == "connected")]
    assert len(sctp) == 3 and (sctp["seen_src_ip"] == sctp["src_ip"]).all()  # the agent's IPv6 SCTP responder
    closed = kinds[kinds["group"] == "crafted-closed"]
    assert len(closed) == 9 and (closed["outcome"] == "refused").all()
    assert (kinds[kinds["method"] == "iperf3"]["throughput_mbps"] > 0).all()
    tier = rows[rows["group"] == "web-to-web"]
    assert len(tier) and (tier["outcome"] == "timeout").all()
    assert tier["drop_owner"].str.startswith("Admin cnp/web-no-ipv6-http").all()
    assert (rows[rows["group"] == "client-to-web"]["outcome"] == "connected").all()


@pytest.mark.parametrize("routing", ["cloud-routes", "vxlan"])
def test_ipv6_only_routing_modes(routing, tmp_path, no_leftovers):
    """cloud-routes (the router's IPv6 side and the route controller's /64 routes) and vxlan
    (flannel-v6.1, MTU 1430) in an ipv6 cluster: pod to pod across nodes over TCP and UDP NAT-free,
    node to a far pod from the address the model says, a ClusterIP; no IPv4 on the router."""
    path = tmp_path / "ipv6.yaml"
    with open(TOPOLOGY, encoding="utf-8") as handle:
        path.write_text(handle.read() + f"routing: {routing}\n", encoding="utf-8")
    plan = plan_cluster(load_topology(str(path)), load_manifests(FILES))
    assert plan.services is not None and plan.routing == routing
    pods = {p.name: p for p in plan.pods}
    echo = {p.name: p for p in plan.pods if p.labels.get("app") == "echo"}
    client = pods["client"]
    far = [p for p in echo.values() if p.node != client.node]
    with EmulatedCluster(plan) as c:
        src = c.pod_netns_path(client)
        for pod in far:
            for kind, port, proto in ((socket.SOCK_STREAM, 8080, "TCP"), (socket.SOCK_DGRAM, 5353, "UDP")):
                reply = _ask(src, pod.ip, port, kind)
                assert (reply["pod"], reply["protocol"], reply["peer_ip"]) == (pod.name, proto, client.ip)
            node = plan.node(client.node)
            seen = _ask(c.node_netns_path(node), pod.ip, 8080, socket.SOCK_STREAM)["peer_ip"]
            assert seen == node_source_ip(plan, node.name, pod.node)
        _spread(src, plan.services.service("default", "echo").cluster_ip, echo, client.ip)
        if routing == "vxlan":
            link = _ip(c.node_netns_path(plan.node(client.node)), "-d", "link", "show", "flannel-v6.1")
            assert " mtu 1430 " in link and "vxlan id 1 local " in link, link
            assert "mtu 1430" in _ip(src, "link", "show", "eth0")
        else:
            router = c.netns_path(plan.network.routers[0].key)
            assert _ip(router, "-4", "-o", "addr").splitlines() == [
                line for line in _ip(router, "-4", "-o", "addr").splitlines() if " lo " in line
            ]
            assert f"{client.ip.rsplit(':', 2)[0]}::/64 via" in _ip(router, "-6", "route")


def test_ipv6_only_external_ips_and_load_balancer(no_leftovers):
    """An IPv6 external IP (manifests/ipv6/edges.yaml): routed /128 from the laptop to one node,
    kube-proxy's IPv6 rules take it to an echo pod, masqueraded to the node as in IPv4; a
    LoadBalancer's address from the IPv6 pool, held by a node, answered the same way."""
    plan = plan_cluster(
        load_topology(TOPOLOGY), load_manifests([*FILES, os.path.join(ROOT, "manifests", "ipv6", "edges.yaml")])
    )
    assert plan.services is not None
    echo = {p.name: p for p in plan.pods if p.labels.get("app") == "echo"}
    client = next(p for p in plan.pods if p.name == "client")
    (ip,) = plan.services.service("default", "echo-external").external_ips
    (route,) = plan.service_routes
    node = next(n for n in plan.nodes if n.host_ip == route.via)
    with EmulatedCluster(plan) as c:
        laptop = c.netns_path(plan.externals[0].key)
        assert f"{ip} via {node.host_ip} dev eth0" in _ip(laptop, "-6", "route")
        for _ in range(4):
            reply = _ask(laptop, ip, 8080, socket.SOCK_STREAM)
            assert reply["pod"] in echo and reply["peer_ip"] in (node.host_ip, node.gateway)
        # the LoadBalancer's IPv6 address: its node holds it on eth0; from the laptop, masqueraded
        (lb,) = plan.services.service("default", "echo-lb").load_balancer_ingress
        holder = plan.node(plan.lb_announcers[lb])
        held = _ip(c.node_netns_path(holder), "-6", "-o", "addr", "show", "dev", "eth0")
        assert f"inet6 {lb}/128 scope global nodad deprecated" in held  # never a source address
        seen = set()
        for reply in _replies(
            lambda: _ask(laptop, lb, 80, socket.SOCK_STREAM), lambda got: len({r["pod"] for r in got}) >= 2
        ):
            assert reply["peer_ip"] in (holder.host_ip, holder.gateway)
            seen.add(reply["pod"])
        assert len(seen) >= 2 and seen <= set(echo)
        # from a pod: its node takes it and masquerades it (kube-proxy's KUBE-EXT chain with
        # externalTrafficPolicy Cluster), as in IPv4
        mine = plan.node(client.node)
        reply = _ask(c.pod_netns_path(client), ip, 8080, socket.SOCK_STREAM)
        assert reply["pod"] in echo and reply["peer_ip"] in (mine.host_ip, mine.gateway)
