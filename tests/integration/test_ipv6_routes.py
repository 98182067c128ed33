"""bgp and racks in single-stack IPv6 clusters, racks with cloud-routes and bgp in dual-stack
ones (issue 15, item 5), on real packets.

- bgp over one IPv6 segment (full mesh, route reflector, top-of-rack): bird2 with IPv6-only
  sessions runs under Calico's hashed router id and installs every peer's /64; pods are a /128
  behind Calico's link-local gateway; nothing IPv4 on any node or pod; pod to pod across nodes
  over TCP and UDP NAT-free, a ClusterIP spread over its endpoints, a NodePort from the laptop.
- racks in an IPv6 cluster (topologies/ipv6-racks.yaml) in cloud-routes, vxlan and bgp
  (top-of-rack): the router forwards IPv6 between the racks (no IPv4 on it), the echo pods'
  all-pairs matrix and every node to every pod over TCP and UDP connect NAT-free, across racks
  included; pods reach the outside world through their node's masquerade (an ip6 table); a
  ClusterIP reaches endpoints in the other rack.
- racks in a dual-stack cluster (routing-racks-<mode>.yaml made dual) in cloud-routes and bgp
  (top-of-rack): the router's IPv6 routes leave by each rack's port; the matrix runs over IPv4 and
  over IPv6, every flow NAT-free; a PreferDualStack ClusterIP answers over IPv6 across racks.
Teardown leaves nothing behind, bird2 daemons included.
"""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from testbed.emu.cluster import EmulatedCluster
from testbed.experiment.expand import expand
from testbed.experiment.model import Endpoints, PodSelection, ProbeGroup
from testbed.experiment.run import probe_rows
from testbed.plan.bird import hash_router_id
from testbed.plan.build import plan_cluster
from testbed.plan.network import CALICO_GATEWAY6
from testbed.spec.selectors import LabelSelector
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .conftest import ROOT
from .test_dual_stack import _ask, _replies
from .test_dual_stack_routing import _assert_all_connected, _matrix
from .test_ipv6_only import FILES, TOPOLOGY, _spread
from .test_routing_modes import _birds

ECHO = os.path.join(ROOT, "manifests", "routing-echo.yaml")
ECHO_SERVICE = """apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  ipFamilyPolicy: PreferDualStack
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: http}]
"""


def _ip(netns: str, *args: str) -> str:
    return subprocess.run(["ip", "-n", netns, *args], capture_output=True, text=True, check=True).stdout


def _no_ipv4(netns: str) -> None:
    assert [line for line in _ip(netns, "-4", "-o", "addr").splitlines() if " lo " not in line] == [], netns
    assert _ip(netns, "-4", "route") == "", netns


def _with(path: str, tmp_path, name: str, *edits: tuple[str, str], extra: str = "") -> str:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    out = tmp_path / name
    out.write_text(text + extra, encoding="utf-8")
    return str(out)


def _service(tmp_path) -> str:
    out = tmp_path / "echo-service.yaml"
    out.write_text(ECHO_SERVICE, encoding="utf-8")
    return str(out)


@pytest.mark.parametrize("bgp", ["full-mesh", "route-reflector", "top-of-rack"])
def test_ipv6_only_bgp(no_leftovers, tmp_path, bgp):
    topology = _with(TOPOLOGY, tmp_path, "ipv6-bgp.yaml", extra=f"routing: bgp\nbgp: {{topology: {bgp}}}\n")
    plan = plan_cluster(load_topology(topology), load_manifests(FILES))
    assert plan.network is not None and plan.services is not None
    pods = {p.name: p for p in plan.pods}
    echo = {p.name: p for p in plan.pods if p.labels.get("app") == "echo"}
    client = pods["client"]
    with EmulatedCluster(plan) as c:
        tag = c.tag
        assert len(_birds(tag)) == len(plan.network.bgp)
        for speaker in plan.network.bgp:  # IPv6-only sessions under the hashed router id
            status = subprocess.run(
                ["birdc", "-s", os.path.join(c.ledger.dir, f"bird-{speaker.key}.ctl"), "show", "status"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            assert f"Router ID is {hash_router_id(speaker.name)}" in status, status
            learned = _ip(c.netns(speaker.key), "-6", "route", "show", "proto", "bird")
            assert all(cidr in learned for cidr in speaker.expected), learned
        for node in plan.nodes:
            _no_ipv4(c.netns(node.key))
        _no_ipv4(c.netns(client.key))
        node = plan.node(client.node)
        assert f"{client.ip} dev {client.host_veth} metric 1024" in _ip(c.netns(node.key), "-6", "route")
        assert f"default via {CALICO_GATEWAY6} dev eth0" in _ip(c.netns(client.key), "-6", "route")
        assert f"inet6 {client.ip}/128" in _ip(c.netns(client.key), "-6", "addr", "show", "dev", "eth0")
        src = c.pod_netns_path(client)
        group = ProbeGroup(
            "client-to-echo",
            Endpoints(pods=PodSelection(names=("client",))),
            Endpoints(pods=PodSelection(selector=LabelSelector.of({"app": "echo"}))),
            protocols=("TCP", "UDP"),
        )
        rows = probe_rows(c, "test", "step", expand(plan, group))
        assert {r["dst_node"] for r in rows} - {client.node}, "no echo pod on another node"
        for r in rows:  # the agent's reply names the pod, the address it saw is the client's own
            assert (r["outcome"], r["seen_src_ip"], r["answered_by"]) == (
                "connected",
                client.ip,
                f"default/{r['dst_name']}",
            ), r
        _spread(src, plan.services.service("default", "echo").cluster_ip, echo, client.ip)
        laptop = c.netns_path(plan.externals[0].key)
        assert _ask(laptop, plan.nodes[1].host_ip, 30080, socket.SOCK_STREAM)["pod"] in echo
    assert _birds(tag) == []
    assert not os.path.exists(f"/run/testbed/{tag}")


def _pods_to_outside(c) -> list[dict]:
    group = ProbeGroup(
        "to-outside",
        Endpoints(pods=PodSelection(selector=LabelSelector.of({"app": "echo"}))),
        Endpoints(hosts=("example-com",)),
        protocols=("TCP", "UDP"),
        family="IPv6",
    )
    return probe_rows(c, "test", "step", expand(c.plan, group))


def _both_racks(racks: dict, echo: dict):
    """enough() for _replies: endpoints in rack1 and in rack2 have answered."""
    return lambda got: {racks[echo[r["pod"]].node] for r in got} == {"rack1", "rack2"}


@pytest.mark.parametrize("routing", ["cloud-routes", "vxlan", "bgp"])
def test_ipv6_only_racks(no_leftovers, tmp_path, routing):
    edits = [("routing: bgp\n", f"routing: {routing}\n")] if routing != "bgp" else []
    topology = _with(os.path.join(ROOT, "topologies", "ipv6-racks.yaml"), tmp_path, "racks.yaml", *edits)
    plan = plan_cluster(load_topology(topology), load_manifests([ECHO, _service(tmp_path)]), seed=1)
    assert plan.network is not None and plan.services is not None and plan.routing == routing
    racks = {n.name: plan.network.subnet_of(n.name).name for n in plan.nodes}
    assert set(racks.values()) == {"rack1", "rack2"}
    client = plan.find_pod("client")
    echo = {p.name: p for p in plan.pods if p.labels.get("app") == "echo"}
    with EmulatedCluster(plan) as c:
        tag = c.tag
        router = c.netns(plan.network.routers[0].key)
        _no_ipv4(router)
        forwarding = ["ip", "netns", "exec", router, "sysctl", "-n", "net.ipv6.conf.all.forwarding"]
        assert subprocess.run(forwarding, capture_output=True, text=True, check=True).stdout.strip() == "1"
        rows = _matrix(c, "IPv6")
        outside = _pods_to_outside(c)
        seen = set()
        cluster_ip = plan.services.service("default", "echo").cluster_ip
        both = _both_racks(racks, echo)
        # the ClusterIP from rack1 reaches the endpoints in rack2 too
        for reply in _replies(lambda: _ask(c.pod_netns_path(client), cluster_ip, 80, socket.SOCK_STREAM), both):
            assert reply["peer_ip"] == client.ip
            seen.add(racks[echo[reply["pod"]].node])
        assert seen == {"rack1", "rack2"}
    assert _birds(tag) == []
    assert len({(r["src_name"], r["dst_name"]) for r in rows if r["src_kind"] == "pod"}) == 8 * 7
    assert len({(r["src_name"], r["dst_name"]) for r in rows if r["src_kind"] == "node"}) == 4 * 8
    cross = [r for r in rows if racks.get(r["src_node"]) != racks.get(r["dst_node"])]
    assert cross
    for r in rows:
        assert (r["outcome"], r["nat_free"], r["family"]) == ("connected", True, "IPv6"), r
        assert ":" in r["dst_ip"] and ":" in r["src_ip"]
    assert len(outside) == 16
    for r in outside:  # SNAT to the node, the one NAT Kubernetes expects (an ip6 table)
        assert r["outcome"] == "connected" and r["nat_free"] is True, r
        assert r["seen_src_ip"] == plan.node(r["src_node"]).host_ip, r


@pytest.mark.parametrize("routing", ["cloud-routes", "bgp"])
def test_dual_stack_racks(no_leftovers, tmp_path, routing):
    topology = _with(
        os.path.join(ROOT, "topologies", f"routing-racks-{routing}.yaml"),
        tmp_path,
        "dual-racks.yaml",
        ("networking:\n", "networking:\n  ipFamily: dual\n"),
    )
    plan = plan_cluster(load_topology(topology), load_manifests([ECHO, _service(tmp_path)]), seed=1)
    dual = plan.dual
    assert dual is not None and len(dual.racks) == 2 and plan.routing == routing
    client = plan.find_pod("client")
    echo = {p.name: p for p in plan.pods if p.labels.get("app") == "echo"}
    racks = {n.name: plan.network.subnet_of(n.name).name for n in plan.nodes}
    with EmulatedCluster(plan) as c:
        tag = c.tag
        table = _ip(c.netns(plan.network.routers[0].key), "-6", "route", "show")
        for n in dual.nodes:  # out of the port of the node's rack (route controller or BGP)
            port = "eth0" if racks[n.name] == "rack1" else "eth1"
            assert f"{n.pod_cidr} via {n.host_ip} dev {port}" in table, table
        rows4, rows6 = _matrix(c, "IPv4"), _matrix(c, "IPv6")
        prefer6 = dual.services["default/echo"].cluster_ips[1]
        seen = set()
        both = _both_racks(racks, echo)
        for reply in _replies(lambda: _ask(c.pod_netns_path(client), prefer6, 80, socket.SOCK_STREAM), both):
            assert reply["peer_ip"] == dual.pods[client.key] and reply["local_ip"] == dual.pods[echo[reply["pod"]].key]
            seen.add(racks[echo[reply["pod"]].node])
        assert seen == {"rack1", "rack2"}
    assert _birds(tag) == []
    _assert_all_connected(plan, rows4, "IPv4")
    _assert_all_connected(plan, rows6, "IPv6")
    assert [r for r in rows6 if racks[r["src_node"]] != racks[r["dst_node"]]]
