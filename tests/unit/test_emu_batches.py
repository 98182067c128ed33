"""emu/ text that goes to the kernel, checked without root: ip -batch lines, agent config, names."""

from __future__ import annotations

import os

from testbed.emu.agent_proc import agent_config
from testbed.emu.cleanup import _AGENT, _MININET_SHELL, _TAGGED_LINK, _TAGGED_NETNS
from testbed.emu.ledger import netns_name
from testbed.emu.pods import bridge_mac, node_batch
from testbed.emu.runner import RecordingRunner, Result
from testbed.emu.underlay import mininet_name
from testbed.errors import KernelError
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _plan():
    return plan_cluster(
        load_topology(os.path.join(ROOT, "topologies/three-nodes.yaml")),
        load_manifests([os.path.join(ROOT, "manifests/quickstart-app.yaml")]),
        seed=1,
    )


def test_node_batch_builds_bridge_veths_and_routes():
    plan = _plan()
    node = plan.node("kind-worker")
    pods = plan.pods_on("kind-worker")
    routes = [r for r in plan.routes if r.node == "kind-worker"]
    lines = node_batch(node, pods, routes, "abcd", 1500)
    assert lines[:4] == [
        f"link add cni0 address {bridge_mac('kind-worker')} type bridge",
        "link set cni0 mtu 1500",
        "addr add 10.244.1.1/24 dev cni0",
        "link set cni0 up",
    ]
    for pod in pods:
        assert (f"link add {pod.host_veth} mtu 1500 type veth peer name eth0 mtu 1500 netns tb-abcd-{pod.key}") in lines
        assert f"link set {pod.host_veth} master cni0 up" in lines
    assert lines[-2:] == [
        "route replace 10.244.0.0/24 via 192.168.1.2 dev eth0",
        "route replace 10.244.2.0/24 via 192.168.1.4 dev eth0",
    ]
    assert all(len(p.host_veth) <= 15 for p in plan.pods)  # IFNAMSIZ


def test_agent_config_lists_every_declared_port():
    plan = _plan()
    cfg = agent_config(plan.pods, "abcd")
    two = [p for p in cfg["pods"] if p["pod"] == "two-containers"][0]
    assert two["netns"] == "/run/netns/tb-abcd-default_two-containers"
    assert {(q["container"], q["port"], q["protocol"]) for q in two["ports"]} == {
        ("app", 8080, "TCP"),
        ("sidecar", 9090, "TCP"),
    }
    web = [p for p in cfg["pods"] if p["pod"].startswith("web-")]
    assert len(web) == 3 and all({q["protocol"] for q in p["ports"]} == {"TCP", "UDP", "SCTP"} for p in web)


def test_cleanup_recognises_only_its_own_names():
    assert _TAGGED_NETNS.match(netns_name("3fa2", "n0")).group(1) == "3fa2"
    assert _TAGGED_NETNS.match("tb-xyz-n0") is None and _TAGGED_NETNS.match("blue") is None
    assert _TAGGED_LINK.match(mininet_name("3fa2", "s0") + "-eth1").group(1) == "3fa2"
    assert _TAGGED_LINK.match("tbird0") is None and _TAGGED_LINK.match("eth0") is None
    assert _MININET_SHELL.search("bash --norc --noediting -is mininet:tb3fa2n1").group(1) == "3fa2"
    assert _MININET_SHELL.search("bash -is mininet:h1") is None
    assert (
        _AGENT.search("/usr/bin/python3 -m testbed.agent --config /run/testbed/3fa2/agent.json --tag 3fa2").group(1)
        == "3fa2"
    )


def test_runner_batches_and_raises_with_the_command():
    runner = RecordingRunner(answers={("ip", "-batch", "-"): Result(1, "", "RTNETLINK answers: File exists")})
    try:
        runner.ip_batch(["netns add tb-abcd-x"])
    except KernelError as exc:
        assert "File exists" in str(exc) and "ip -batch -" in str(exc)
    else:
        raise AssertionError("a failed batch must raise")
    runner.ip_batch(["link set lo up"], netns="tb-abcd-n0")
    assert runner.calls[-1] == (("ip", "-n", "tb-abcd-n0", "-batch", "-"), "link set lo up\n")
    # inside the namespace, without `ip -n` (no mount namespace, no /sys remount)
    runner.ip_batch_in("tb-abcd-n0", ["link set lo up"])
    assert runner.calls[-1] == (("nsenter", "--net=/run/netns/tb-abcd-n0", "ip", "-batch", "-"), "link set lo up\n")


def test_bridge_mac_is_pinned_local_unicast_and_stable():
    mac = bridge_mac("kind-worker")
    first = int(mac.split(":")[0], 16)
    assert first & 0x02 and not first & 0x01  # locally administered, unicast
    assert mac == bridge_mac("kind-worker") != bridge_mac("kind-worker2")


def test_neighbour_table_need_grows_with_pods_per_node():
    from testbed.emu.limits import neighbour_entries_needed

    plan = _plan()  # 2 pods on each node (CoreDNS x2 on the control plane); 3 nodes + 1 external host
    assert neighbour_entries_needed(plan) == 3 * (2 * 3) + 4**2


def test_egress_masquerade_rules_cover_only_the_outside_world():
    from testbed.rules.egress import egress_nft

    text = egress_nft("10.244.0.0/16", ["203.0.113.0/24"])
    assert text.startswith("table ip testbed-egress {}\ndelete table ip testbed-egress\n")  # atomic, idempotent
    assert "ip saddr 10.244.0.0/16 ip daddr { 203.0.113.0/24 } masquerade" in text
    assert "masquerade" not in egress_nft("10.244.0.0/16", [])


def test_a_long_batch_runs_in_chunks_in_order():
    """10,000 `netns add` lines outlasted one command's timeout: at most IP_BATCH_LINES a process."""
    from testbed.emu.runner import IP_BATCH_LINES

    runner = RecordingRunner()
    lines = [f"netns add tb-x-{i}" for i in range(2 * IP_BATCH_LINES + 5)]
    runner.ip_batch(lines)
    sent = [text.splitlines() for _, text in runner.calls]
    assert [len(s) for s in sent] == [IP_BATCH_LINES, IP_BATCH_LINES, 5]
    assert sum(sent, []) == lines and all(argv == ("ip", "-batch", "-") for argv, _ in runner.calls)
