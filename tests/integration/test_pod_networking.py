"""Pod networking with real packets, in both kube-proxy modes (issue 13): a hostNetwork pod on its
node's HOST-IP, directly and through a Service; a hostPort from the laptop, from a pod on another
node and from the pod itself, with the source address each one's server saw; the pod's
resolv.conf and /etc/hosts as a command inside the pod reads them; and a hostPort removed."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess

import pytest

from testbed.emu.cluster import EmulatedCluster
from testbed.plan.build import plan_cluster, replan
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .conftest import ROOT

APP = os.path.join(ROOT, "manifests", "pod-networking.yaml")


@pytest.fixture(params=["three-nodes.yaml", "three-nodes-nftables.yaml"], ids=["iptables", "nftables"])
def cluster(request, no_leftovers):
    spec = load_topology(os.path.join(ROOT, "topologies", request.param))
    manifests = load_manifests([APP])
    with EmulatedCluster(plan_cluster(spec, manifests, seed=5)) as c:
        c.spec, c.manifests = spec, manifests
        yield c


def _in(c, key: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ip", "netns", "exec", c.netns(key), *argv], capture_output=True, text=True, timeout=10, check=False
    )


def _get(c, key: str, url: str) -> dict:
    """An HTTP GET from a pod or host namespace; the agent's answer (who answered, whom it saw)."""
    out = _in(c, key, "curl", "-s", "--max-time", "2", url)
    assert out.returncode == 0, (key, url, out.returncode, out.stderr)
    return json.loads(out.stdout)


def test_host_network_pod_and_host_port_with_real_packets(cluster):
    c = cluster
    plan = c.plan
    metrics, web, client = plan.find_pod("node-metrics"), plan.find_pod("web-hostport"), plan.find_pod("client")
    worker, worker2 = plan.node("kind-worker"), plan.node("kind-worker2")
    laptop = plan.externals[0]
    # The hostNetwork pod: its pod IP is its node's, its port is bound in the node's namespace.
    assert metrics.ip == worker.host_ip
    seen = _get(c, laptop.key, f"http://{worker.host_ip}:9100/")
    assert (seen["pod"], seen["peer_ip"], seen["local_ip"]) == ("node-metrics", laptop.ip, worker.host_ip)
    assert _in(c, metrics.key, "ip", "-4", "-o", "addr", "show", "eth0").stdout.split()[3] == f"{worker.host_ip}/24"
    # ... and through its Service, from a pod of another node: the endpoint is the node IP.
    svc = next(s for s in plan.services.services if s.name == "node-metrics")
    other = next(p for p in plan.pods if p.node != metrics.node and not p.host_network and p.namespace == "kube-system")
    seen = _get(c, other.key, f"http://{svc.cluster_ip}:9100/")
    assert (seen["pod"], seen["local_ip"], seen["peer_ip"]) == ("node-metrics", worker.host_ip, other.ip)
    # The hostPort: from the laptop, the pod sees the laptop's own address (portmap keeps it) ...
    seen = _get(c, laptop.key, f"http://{worker2.host_ip}:8080/")
    assert (seen["pod"], seen["port"], seen["peer_ip"], seen["local_ip"]) == ("web-hostport", 80, laptop.ip, web.ip)
    # ... from a pod on another node, that pod's address ...
    seen = _get(c, client.key, f"http://{worker2.host_ip}:8080/")
    assert (seen["pod"], seen["peer_ip"]) == ("web-hostport", client.ip)
    # ... and from itself (hairpin), its node's cni0 address: the one masquerade portmap does.
    seen = _get(c, web.key, f"http://{worker2.host_ip}:8080/")
    assert (seen["pod"], seen["peer_ip"]) == ("web-hostport", worker2.gateway)
    # Other nodes do not forward that port.
    assert _in(c, laptop.key, "curl", "-s", "--max-time", "1", f"http://{worker.host_ip}:8080/").returncode != 0


def test_resolv_conf_and_hosts_as_seen_inside_the_pods(cluster):
    c = cluster
    plan = c.plan
    client, metrics = plan.find_pod("client"), plan.find_pod("node-metrics")
    assert _in(c, client.key, "cat", "/etc/resolv.conf").stdout == (
        "search default.svc.cluster.local svc.cluster.local cluster.local example.internal\n"
        f"nameserver {plan.dns_server}\noptions edns0 ndots:2\n"
    )
    hosts = _in(c, client.key, "cat", "/etc/hosts").stdout
    assert hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert f"{client.ip}\tclient\n\n# Entries added by HostAliases.\n192.168.1.10\tlaptop.local\tlaptop\n" in hosts
    # The alias resolves inside the pod (glibc reads the pod's /etc/hosts); the Service name
    # resolves through the cluster DNS with the pod's search path.
    assert _in(c, client.key, "getent", "hosts", "laptop.local").stdout.split()[0] == "192.168.1.10"
    assert _in(c, client.key, "getent", "ahostsv4", "node-metrics").stdout.split()[0] == next(
        s.cluster_ip for s in plan.services.services if s.name == "node-metrics"
    )
    # A hostNetwork pod with ClusterFirst falls back to Default: the emulated node has no
    # resolver (kubelet --resolv-conf=""), so a lookup is refused at once, never sent outside.
    assert _in(c, metrics.key, "cat", "/etc/resolv.conf").stdout == "search .\nnameserver 127.0.0.1\n"
    assert _in(c, metrics.key, "getent", "hosts", "kube-dns.kube-system.svc.cluster.local").returncode != 0
    assert _in(c, metrics.key, "cat", "/etc/hosts").stdout.startswith("# Kubernetes-managed hosts file (host network).")


def test_a_host_port_follows_its_pod(cluster):
    """The pod with the hostPort deleted: its DNAT goes (the laptop is refused); back, it works."""
    c = cluster
    worker2, laptop = c.plan.node("kind-worker2"), c.plan.externals[0]
    without = dataclasses.replace(c.manifests, pods=tuple(p for p in c.manifests.pods if p.ref.name != "web-hostport"))
    c.apply(replan(c.spec, without, seed=5, prev=c.plan))
    assert c.plan.find_pod("web-hostport") is None
    assert _in(c, laptop.key, "curl", "-s", "--max-time", "1", f"http://{worker2.host_ip}:8080/").returncode != 0
    c.apply(replan(c.spec, c.manifests, seed=5, prev=c.plan))
    web = c.plan.find_pod("web-hostport")
    seen = _get(c, laptop.key, f"http://{worker2.host_ip}:8080/")
    assert (seen["pod"], seen["local_ip"], seen["peer_ip"]) == ("web-hostport", web.ip, laptop.ip)


TWO_ON_ONE_NODE = """
apiVersion: v1
kind: Pod
metadata: {name: exporter-a}
spec:
  hostNetwork: true
  nodeName: kind-worker
  containers: [{name: a, ports: [{containerPort: 9100}, {containerPort: 9101, protocol: UDP}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: exporter-b}
spec:
  hostNetwork: true
  nodeName: kind-worker
  containers: [{name: b, ports: [{containerPort: 9200, protocol: SCTP}, {containerPort: 9201}]}]
"""


def test_two_host_network_pods_share_their_nodes_namespace(no_leftovers, tmp_path):
    """Every port of both pods answers on the node's HOST-IP, each with its own pod's identity
    (one namespace, one raw SCTP socket for both), to the laptop's own address."""
    from testbed.experiment.expand import expand
    from testbed.experiment.model import Endpoints, PodSelection, ProbeGroup
    from testbed.experiment.run import probe_rows

    path = tmp_path / "two.yaml"
    path.write_text(TWO_ON_ONE_NODE, encoding="utf-8")
    spec = load_topology(os.path.join(ROOT, "topologies", "three-nodes.yaml"))
    with EmulatedCluster(plan_cluster(spec, load_manifests([str(path)]), seed=5)) as c:
        group = ProbeGroup(
            "hostnet",
            Endpoints(hosts=("laptop",)),
            Endpoints(pods=PodSelection(names=("exporter-a", "exporter-b"))),
            timeout=1.0,
        )
        rows = probe_rows(c, "t", "s", expand(c.plan, group))
        got = sorted((r["dst_ip"], r["port"], r["protocol"], r["outcome"], r["answered_by"]) for r in rows)
        host = c.plan.node("kind-worker").host_ip
        assert got == [
            (host, 9100, "TCP", "connected", "default/exporter-a"),
            (host, 9101, "UDP", "connected", "default/exporter-a"),
            (host, 9200, "SCTP", "connected", "default/exporter-b"),
            (host, 9201, "TCP", "connected", "default/exporter-b"),
        ]
        assert {r["seen_src_ip"] for r in rows if r["protocol"] != "SCTP"} == {"192.168.1.10"}
        # one raw SCTP socket in the node's namespace, not one per pod (each would ABORT the other's ports)
        raw = _in(c, c.plan.find_pod("exporter-a").key, "ss", "-H", "-w", "-a", "-n").stdout.splitlines()
        assert [line.split()[3] for line in raw] == ["0.0.0.0:132"]


@pytest.mark.parametrize(
    "name,neighbour_seen",
    [("pod-networking.yaml", "gateway"), ("pod-networking-nftables.yaml", "own")],
    ids=["iptables", "nftables"],
)
def test_the_shipped_experiments_pass(tmp_path, no_leftovers, name, neighbour_seen):
    """experiments/pod-networking*.yaml: every probe as expected, and the one difference between
    portmap's backends measured: a pod of the hostPort pod's node is masqueraded by iptables only."""
    import pandas as pd

    from testbed.experiment.load import load_experiment
    from testbed.experiment.run import run_experiment

    run_dir, passed = run_experiment(
        load_experiment(os.path.join(ROOT, "experiments", name)), str(tmp_path), progress=lambda _m: None
    )
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    assert passed and len(rows) == 103 and rows["outcome_ok"].all()
    plan = json.load(open(os.path.join(run_dir, "plan.json"), encoding="utf-8"))
    ips = {p["name"]: p["ip"] for p in plan["pods"]}
    gateway = next(n["gateway"] for n in plan["nodes"] if n["name"] == "kind-worker2")
    first = rows[rows.step != "default-deny"]
    seen = set(first[(first.group == "pods-to-hostport") & (first.src_name == "neighbour")]["seen_src_ip"])
    assert seen == {gateway if neighbour_seen == "gateway" else ips["neighbour"]}
    laptop = first[first.group == "laptop-to-hostport"]
    assert set(laptop["seen_src_ip"]) == {"192.168.1.10"} and set(laptop["dst_ip"]) == {"192.168.1.4"}
    # default-deny: the hostNetwork pod is not selected; the hostPort pod is, for every sender
    # but itself (the neighbour too, masqueraded or not: the filter sees it before the masquerade)
    deny = rows[rows.step == "default-deny"]
    got = {(g, s): set(o) for (g, s), o in deny.groupby(["group", "src_name"])["outcome"]}
    assert got == {
        ("laptop-to-host-network-pod", "laptop"): {"connected"},
        ("laptop-to-hostport", "laptop"): {"timeout"},
        ("pods-to-hostport", "client"): {"timeout"},
        ("pods-to-hostport", "neighbour"): {"timeout"},
        ("pods-to-hostport", "web-hostport"): {"connected"},
        ("pods-to-hostport", "node-metrics"): {"timeout"},  # its node's address: another node's
    }
