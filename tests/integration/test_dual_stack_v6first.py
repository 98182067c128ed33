"""An IPv6-first dual-stack cluster (issue 15) with real packets, in every routing mode it builds.

topologies/dual-stack-v6first.yaml lists IPv6 first in podSubnet and serviceSubnet, so IPv6 is
the primary family: pods' podIP, the Services' defaults and kube-dns are IPv6. Each routing-l2
topology made IPv6-first (host-gw, cloud-routes, vxlan, bgp; iptables and nftables kube-proxy)
runs manifests/dual-stack-services.yaml; across nodes, pod to pod in each family must be NAT-free
(the server sees the sender's own address of that family); the default SingleStack Service
answers at its IPv6 ClusterIP through the IPv6 proxier while its IPv4 allocation is programmed
nowhere (nothing answers there); PreferDualStack answers in both families; the RequireDualStack
NodePort on a node's IPv6 address; pods' resolv.conf names kube-dns's IPv6 ClusterIP, which
answers AAAA and A. Teardown leaves nothing behind (bird2 daemons included).
"""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from testbed.emu.cluster import EmulatedCluster
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .conftest import ROOT
from .test_dual_stack import _ask

SERVICES = os.path.join(ROOT, "manifests", "dual-stack-services.yaml")
V6FIRST = (
    "networking:\n  ipFamily: dual\n  podSubnet: fd00:10:244::/56,10.244.0.0/16\n"
    "  serviceSubnet: fd00:10:96::/112,10.96.0.0/16\n"
)


def _v6first_spec(tmp_path, mode: str, proxy: str):
    """routing-l2-<mode>.yaml with IPv6-first pairs (and kube-proxy in `proxy` mode)."""
    with open(os.path.join(ROOT, "topologies", f"routing-l2-{mode}.yaml"), encoding="utf-8") as handle:
        text = handle.read()
    old = "networking:\n  podSubnet: 10.244.0.0/16\n  serviceSubnet: 10.96.0.0/12\n"
    assert old in text
    text = text.replace(old, V6FIRST + f"  kubeProxyMode: {proxy}\n")
    path = tmp_path / f"v6first-{mode}.yaml"
    path.write_text(text)
    return load_topology(str(path))


def _refused(netns: str, address: str, port: int) -> bool:
    try:
        _ask(netns, address, port, socket.SOCK_STREAM)
    except OSError:  # refused, unreachable or a timeout: nothing there answers
        return True
    return False


@pytest.mark.parametrize(
    "mode,proxy",
    [
        ("host-gw", "iptables"),
        ("host-gw", "nftables"),
        ("cloud-routes", "iptables"),
        ("vxlan", "nftables"),
        ("bgp", "iptables"),
    ],
)
def test_ipv6_first_cluster_with_real_packets(tmp_path, no_leftovers, mode, proxy):
    plan = plan_cluster(_v6first_spec(tmp_path, mode, proxy), load_manifests([SERVICES]), seed=1)
    dual, services = plan.dual, plan.services
    assert dual is not None and services is not None and dual.families == ("IPv6", "IPv4")
    echo = {p.name: p for p in plan.pods if p.labels.get("app") == "echo"}
    client = next(iter(echo.values()))
    server = next(p for p in echo.values() if p.node != client.node)
    single = dual.services["default/echo-single"]
    prefer6, prefer4 = dual.services["default/echo-prefer"].cluster_ips
    dns6 = dual.services["kube-system/kube-dns"].cluster_ips
    assert single.families == ("IPv6",) and len(single.cluster_ips) == 1 and dns6 == ("fd00:10:96::a",)
    assert plan.dns_server == "fd00:10:96::a"
    with EmulatedCluster(plan) as c:
        src = c.pod_netns_path(client)
        for family, client_ip, server_ip in (
            ("IPv6", dual.pods[client.key], dual.pods[server.key]),
            ("IPv4", client.ip, server.ip),
        ):
            for kind, port, proto in ((socket.SOCK_STREAM, 80, "TCP"), (socket.SOCK_DGRAM, 53, "UDP")):
                reply = _ask(src, server_ip, port, kind)
                assert (reply["pod"], reply["protocol"]) == (server.name, proto), family
                assert (reply["peer_ip"], reply["local_ip"]) == (client_ip, server_ip), f"{family} {proto}: NAT seen"
        # the default SingleStack Service: IPv6 only; its IPv4 allocation is in no proxier's rules
        reply = _ask(src, single.cluster_ips[0], 80, socket.SOCK_STREAM)
        assert reply["pod"] in echo and reply["local_ip"] == dual.pods[echo[reply["pod"]].key]
        assert _refused(src, services.service("default", "echo-single").cluster_ip, 80)
        assert _ask(src, prefer6, 80, socket.SOCK_STREAM)["pod"] in echo
        reply4 = _ask(src, prefer4, 80, socket.SOCK_STREAM)
        assert reply4["local_ip"] == echo[reply4["pod"]].ip
        laptop = c.netns_path(plan.externals[0].key)
        assert _ask(laptop, dual.nodes[1].host_ip, 30080, socket.SOCK_STREAM)["pod"] in echo
        # kube-dns at its IPv6 ClusterIP, the nameserver of every pod
        ns = os.path.basename(src)
        with open(f"/etc/netns/{ns}/resolv.conf", encoding="utf-8") as handle:
            assert "nameserver fd00:10:96::a\n" in handle.read()
        with open(f"/etc/netns/{ns}/hosts", encoding="utf-8") as handle:  # the kubelet's line: podIP first
            assert f"\n{dual.pods[client.key]}\t{client.name}\n" in handle.read()

        def dig(kind: str, name: str) -> list[str]:
            argv = ["ip", "netns", "exec", ns, "dig", "+short", "+time=2", "+tries=2", kind, name]
            return sorted(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split())

        assert dig("AAAA", "echo-single.default.svc.cluster.local") == [single.cluster_ips[0]]
        assert dig("A", "echo-single.default.svc.cluster.local") == []  # no IPv4 ClusterIP, no A record
        assert dig("A", "echo-prefer.default.svc.cluster.local") == [prefer4]
        assert dig("AAAA", "kube-dns.kube-system.svc.cluster.local") == ["fd00:10:96::a"]


def test_the_ipv6_first_experiment_is_nat_free_in_each_family(tmp_path, no_leftovers):
    """experiments/dual-stack-v6first.yaml: every probe as expected, NAT-free in both families;
    names resolved by the IPv6 kube-dns: AAAA for the IPv6 group, A for the IPv4 one. The
    single-stack groups name no family: they go over the primary one, IPv6 (experiment/family.py)."""
    import json

    import pandas as pd

    from testbed.experiment.load import load_experiment
    from testbed.experiment.run import run_experiment

    run_dir, passed = run_experiment(
        load_experiment(os.path.join(ROOT, "experiments", "dual-stack-v6first.yaml")),
        str(tmp_path),
        progress=lambda _m: None,
    )
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    meta = json.load(open(os.path.join(run_dir, "run.json")))
    assert passed and meta["as_expected"] == meta["probes"] == len(rows) and meta["nat_violations"] == 0
    assert set(rows["family"]) == {"IPv4", "IPv6"}
    for family in ("IPv4", "IPv6"):
        pods = rows[(rows["family"] == family) & rows["communication"].str.startswith("pod-to-pod")]
        connected = pods[pods["outcome"] == "connected"]
        assert len(connected) > 0 and (connected["seen_src_ip"] == connected["src_ip"]).all(), family
    single = rows[rows["group"].str.startswith("single-stack")]
    assert len(single) == 3 * 3 + 3 and (single["family"] == "IPv6").all()  # 3 web pods, repeat 3 and 1
    dns = rows[rows["communication"] == "pod-to-service (DNS name)"]
    by_group = {g: set(d["dst_ip"]) for g, d in dns.groupby("group")}
    assert all(":" in ip for ip in by_group["single-stack-dns-v6"]), by_group
    assert all(":" not in ip for ip in by_group["prefer-dual-dns-v4"]), by_group
    assert (dns["outcome"] == "connected").all()


def test_conformance_over_both_families_on_an_ipv6_first_cluster(tmp_path, no_leftovers):
    import json

    from testbed.conformance.run import run_conformance

    topology = os.path.join(ROOT, "topologies", "dual-stack-v6first.yaml")
    run_dir, passed = run_conformance(topology, str(tmp_path), limit=4, family="dual")
    with open(os.path.join(run_dir, "conformance.json"), encoding="utf-8") as handle:
        meta = json.load(handle)
    assert passed, open(os.path.join(run_dir, "conformance.md")).read()[:4000]
    assert meta["counts"]["mismatches"] == 0 and meta["counts"]["probes"] >= 4 * 2 * 486
