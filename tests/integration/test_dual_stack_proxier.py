"""kube-proxy's IPv6 proxier with real packets, in nftables mode and iptables mode (issue 15).

A dual-stack cluster in nftables mode (topologies/dual-stack-nftables.yaml) holds table ip
kube-proxy and table ip6 kube-proxy on every node (in iptables mode, topologies/dual-stack.yaml:
the ip6tables rules). Over IPv6: a ClusterIP spread over its endpoints without NAT, UDP, a
NodePort from the laptop; a scale-up synced partially (nftables: the ip6 table's kernel state
then equals a full load's); and a kube-proxy-down fault: the stopped node's IPv6 rules go stale
(its own flows still reach the pods that left), the other nodes' follow, and the node catches up
once kube-proxy is back. Teardown leaves nothing.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess

import pytest

from testbed.emu.cluster import EmulatedCluster
from testbed.emu.kubeproxy6 import KubeProxy6
from testbed.emu.rules import nft_load
from testbed.faults.model import Fault, Recover, Timers
from testbed.kubeproxy import render
from testbed.plan.build import plan_cluster, replan
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .conftest import ROOT
from .test_dual_stack import _ask, _replies
from .test_services import _kube_proxy_dump

TOPOLOGIES = {
    "nftables": os.path.join(ROOT, "topologies", "dual-stack-nftables.yaml"),
    "iptables": os.path.join(ROOT, "topologies", "dual-stack.yaml"),
}
SERVICES = os.path.join(ROOT, "manifests", "dual-stack-services.yaml")
FAST = Timers(time_scale=0.005)


def _scaled(manifests, replicas: int):
    return dataclasses.replace(
        manifests, workloads=tuple(dataclasses.replace(w, replicas=replicas) for w in manifests.workloads)
    )


def _listing(c, node, family: str) -> str:
    """kube-proxy's rules of one family on the node, as its tool lists them."""
    inside = ["ip", "netns", "exec", c.netns(node.key)]
    if c.plan.kube_proxy_mode == "nftables":
        argv = inside + ["nft", "list", "table", family, "kube-proxy"]
    else:
        argv = inside + ["ip6tables-save" if family == "ip6" else "iptables-save", "-t", "nat"]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def _dnat(c, ip: str) -> str:
    """How the node's rules write a DNAT to ip:80."""
    target = f"[{ip}]:80" if ":" in ip else f"{ip}:80"
    return f"dnat to {target}" if c.plan.kube_proxy_mode == "nftables" else f"--to-destination {target}"


def _answers(netns: str, address: str, tries: int) -> list[str | None]:
    """The pod that answered each TCP connection to address:80 (None: no answer)."""
    out: list[str | None] = []
    for _ in range(tries):
        try:
            out.append(_ask(netns, address, 80, socket.SOCK_STREAM)["pod"])
        except OSError:
            out.append(None)
    return out


@pytest.mark.parametrize("mode", ["nftables", "iptables"])
def test_ipv6_services_scale_and_kube_proxy_down(no_leftovers, mode):
    spec, manifests = load_topology(TOPOLOGIES[mode]), load_manifests([SERVICES])
    plan = plan_cluster(spec, manifests)
    dual = plan.dual
    assert dual is not None and plan.kube_proxy_mode == mode
    echo = {p.name: p for p in plan.pods if p.labels.get("app") == "echo"}
    client = next(iter(echo.values()))
    prefer6 = dual.services["default/echo-prefer"].cluster_ips[1]
    with EmulatedCluster(plan) as c:
        for node in plan.nodes:  # upstream's two proxiers: one table per family
            tables = subprocess.run(
                ["ip", "netns", "exec", c.netns(node.key), "nft", "list", "tables"], capture_output=True, text=True
            ).stdout
            both = "table ip kube-proxy" in tables and "table ip6 kube-proxy" in tables
            assert both == (mode == "nftables"), tables
        src = c.pod_netns_path(client)
        seen = set()
        for reply in _replies(
            lambda: _ask(src, prefer6, 80, socket.SOCK_STREAM), lambda got: len({r["pod"] for r in got}) >= 2
        ):
            assert reply["local_ip"] == dual.pods[echo[reply["pod"]].key]
            if reply["pod"] != client.name:  # not hairpinned: no NAT
                assert reply["peer_ip"] == dual.pods[client.key]
            seen.add(reply["pod"])
        assert len(seen) >= 2, seen
        assert _ask(src, prefer6, 53, socket.SOCK_DGRAM)["protocol"] == "UDP"
        laptop = c.netns_path(plan.externals[0].key)
        assert _ask(laptop, dual.nodes[1].host_ip, 30080, socket.SOCK_STREAM)["pod"] in echo  # NodePort, IPv6

        # a scale-up: the IPv6 proxier's syncs are partial, and the kernel holds what a full load gives
        proxy6 = c.controller(KubeProxy6)
        assert proxy6 is not None and set(proxy6.kinds.values()) == {"full"}
        bigger = replan(spec, _scaled(manifests, 5), prev=plan)
        c.apply(bigger)
        assert set(proxy6.kinds.values()) == {"partial"}, proxy6.kinds
        five = {p.name: p for p in bigger.pods if p.labels.get("app") == "echo"}
        assert len(five) == 5
        assert set(_answers(src, prefer6, 40)) == set(five)  # every endpoint, the new ones too
        for node in bigger.nodes if mode == "nftables" else ():
            dump = _kube_proxy_dump(c, node, "ip6")
            nft_load(c.runner, c.netns(node.key), render(proxy6.previous[node.name]))  # whole, fresh
            assert _kube_proxy_dump(c, node, "ip6") == dump, node.name

        # kube-proxy stops on kind-worker: scaled down to one, its rules (both families) go stale
        stopped, running = bigger.node("kind-worker"), bigger.node("kind-worker2")
        fault = Fault("kube-proxy-down", node=stopped.name)
        c.faults.inject(fault, FAST, spec, manifests)
        one = replan(spec, _scaled(manifests, 1), prev=bigger)
        c.apply(one)
        (kept,) = [p for p in one.pods if p.labels.get("app") == "echo"]
        left = [p for p in five.values() if p.name != kept.name]
        assert bigger.dual is not None
        gone6 = [bigger.dual.pods[p.key] for p in left]
        stale6 = _listing(c, stopped, "ip6")
        assert all(_dnat(c, ip6) in stale6 for ip6 in gone6)
        assert all(_dnat(c, p.ip) in _listing(c, stopped, "ip") for p in left)  # the IPv4 proxier too
        assert not any(ip6 in _listing(c, running, "ip6") for ip6 in gone6)
        # the node's own IPv6 flows: the running node's reach the one pod; the stopped one's
        # are still spread over five endpoints, four of them gone
        assert _answers(c.node_netns_path(running), prefer6, 6) == [kept.name] * 6
        lost = _answers(c.node_netns_path(stopped), prefer6, 6)
        assert None in lost and set(lost) <= {kept.name, None}, lost
        c.faults.recover(Recover(fault), FAST, spec, manifests)
        assert not any(ip6 in _listing(c, stopped, "ip6") for ip6 in gone6)
        assert _answers(c.node_netns_path(stopped), prefer6, 6) == [kept.name] * 6


PACED = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: slow, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: slow}}
  template:
    metadata: {labels: {app: slow}}
    spec:
      terminationGracePeriodSeconds: 3600
      containers:
        - name: slow
          image: agnhost
          ports: [{name: http, containerPort: 80}]
          lifecycle: {preStop: {sleep: {seconds: 3000}}}
---
apiVersion: v1
kind: Service
metadata: {name: slow, namespace: default}
spec:
  ipFamilyPolicy: PreferDualStack
  selector: {app: slow}
  ports: [{name: http, port: 80, targetPort: http}]
"""


def test_a_travelling_change_and_terminating_endpoints_over_ipv6(no_leftovers, tmp_path):
    """A scale-up reaches the nodes' IPv6 rules one node after the other (kube-proxy's watch
    delays, spread); scaled to zero, the pods terminate for a long preStop and both families'
    rules fall back to them (serving, terminating): the IPv6 ClusterIP still answers."""
    from testbed.experiment.paced import PacedChanges
    from testbed.lifecycle.delays import Delays

    path = tmp_path / "slow.yaml"
    path.write_text(PACED)
    spec, manifests = load_topology(TOPOLOGIES["nftables"]), load_manifests([str(path)])
    plan = plan_cluster(spec, manifests)
    assert plan.dual is not None
    # the first node sees a change 0.1 s after its EndpointSlice is written, the last 30 s later
    delays = Delays(kube_proxy_watch_spread=30.0, timers=Timers(time_scale=0.05))
    with EmulatedCluster(plan) as c:
        driver = PacedChanges(c, manifests, delays).driver
        first, last = c.plan.nodes[0], c.plan.nodes[-1]
        three = replan(spec, _scaled(manifests, 3), prev=driver.base)
        assert three.dual is not None
        driver.change(three)
        (new,) = [p for p in three.pods if p.name not in {q.name for q in plan.pods}]
        target = _dnat(c, three.dual.pods[new.key])
        driver.wait_until(lambda: target in _listing(c, first, "ip6"), "the first node's IPv6 rules", limit=20.0)
        assert target not in _listing(c, last, "ip6")  # still travelling: the last node's view is older
        driver.settle()
        assert target in _listing(c, last, "ip6")
        # scaled to zero: every pod terminating, held by its preStop sleep, still serving
        slow6 = three.dual.services["default/slow"].cluster_ips[1]
        slow4 = three.services.service("default", "slow").cluster_ip
        driver.change(replan(spec, _scaled(manifests, 0), prev=driver.base))
        driver.run_for(40.0)  # past every node's watch delay
        services = c.plan.services
        assert c.plan.dual is not None and services is not None
        eps = services.endpoints("default", "slow", "http", "TCP")
        assert len(eps) == 3 and all(e.terminating and e.serving and not e.ready for e in eps), eps
        names = {p.name for p in three.pods if p.labels.get("app") == "slow"}
        node = c.node_netns_path(first)
        for address in (slow4, slow6):
            answered = _answers(node, address, 6)
            assert set(answered) <= names and None not in answered, (address, answered)
