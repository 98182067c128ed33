"""The 10,000-pod build and teardown paths of emu/: veth pairs made by in-process rtnetlink
(veths.py) are what node_batch's `ip` lines make, one queue each way; namespaces are added on
hard-linked mount points (netnsadd.py) and deleted in-process (netnsdel.py), leaving nothing."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time

import pytest

from testbed.emu.netnsadd import _mount_points, add_netns
from testbed.emu.netnsdel import delete_netns
from testbed.emu.pods import node_batch
from testbed.emu.veths import PodLink, add_pod_links
from testbed.errors import KernelError
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NETNS = "/run/netns"


def _plan(topology: str):
    return plan_cluster(
        load_topology(os.path.join(ROOT, f"topologies/{topology}.yaml")),
        load_manifests([os.path.join(ROOT, "manifests/quickstart-app.yaml")]),
        seed=1,
    )


def _ip(*argv: str) -> list[dict]:
    out = subprocess.run(["ip", "-d", "-j", *argv], capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")


def _link(netns: str, name: str) -> dict:
    (link,) = _ip("-n", netns, "link", "show", "dev", name)
    return link


def _facts(link: dict) -> dict:
    """What a pod's veth end must be, whichever way it was made."""
    info = link.get("linkinfo", {})
    return {
        "mtu": link["mtu"],
        "kind": info.get("info_kind"),
        "master": link.get("master"),
        "hairpin": info.get("info_slave_data", {}).get("hairpin"),
        "addrgenmode": link.get("inet6_addr_gen_mode"),
        "up": "UP" in link["flags"],
    }


@pytest.fixture
def scratch():
    """Namespaces named like an instance's (tb-<tag>-...) with no instance folder: if this test
    dies, a stale sweep takes them (as test_procsys does)."""
    tag = secrets.token_hex(2)
    made: list[str] = []

    def add(*keys: str) -> list[str]:
        names = [f"tb-{tag}-{k}" for k in keys]
        add_netns(NETNS, names)
        made.extend(names)
        return names

    yield add
    subprocess.run(["ip", "-force", "-batch", "-"], input="".join(f"netns del {n}\n" for n in made), text=True)


@pytest.mark.parametrize("topology", ["three-nodes", "routing-l2-bgp"])
def test_in_process_veths_are_what_the_ip_lines_make(scratch, topology):
    plan = _plan(topology)
    node = plan.node("kind-worker")
    one, two = plan.pods_on("kind-worker")[:2]
    node_ns, ns_one, ns_two = scratch("node", one.key, two.key)  # the names node_batch gives them
    tag = node_ns.split("-")[1]
    if node.bridge:
        lines = node_batch(node, [], [], tag, 1450)  # cni0, as the build makes it
        subprocess.run(["ip", "-n", node_ns, "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=True)
    pod_lines = node_batch(node, [two], [], tag, 1450, with_bridge=False)
    subprocess.run(["ip", "-n", node_ns, "-batch", "-"], input="\n".join(pod_lines) + "\n", text=True, check=True)
    add_pod_links(node_ns, [PodLink(one.host_veth, ns_one, one.ip)], 1450, bridge=node.bridge)

    made, reference = _link(node_ns, one.host_veth), _link(node_ns, two.host_veth)
    assert _facts(made) == _facts(reference)
    assert _facts(made)["addrgenmode"] == "none" and _facts(made)["up"]
    assert _facts(made)["master"] == (node.bridge or None)
    assert (made["num_tx_queues"], made["num_rx_queues"]) == (1, 1)  # asked for: no queues shrunk later
    peer, peer_reference = _link(ns_one, "eth0"), _link(ns_two, "eth0")
    assert _facts(peer) == _facts(peer_reference)
    assert (peer["num_tx_queues"], peer["num_rx_queues"]) == (1, 1)
    if not node.bridge:  # routed: the pod's /32, as `ip route replace` makes it
        routes = {r["dst"]: r for r in _ip("-n", node_ns, "route", "show")}
        assert routes[f"{one.ip}"]["dev"] == one.host_veth
        assert {k: v for k, v in routes[one.ip].items() if k not in ("dst", "dev")} == {
            k: v for k, v in routes[two.ip].items() if k not in ("dst", "dev")
        }
    with pytest.raises(KernelError, match="File exists"):  # the kernel's refusal, naming the request
        add_pod_links(node_ns, [PodLink(one.host_veth, ns_one, one.ip)], 1450, bridge=node.bridge)


def test_in_process_delete_leaves_nothing(scratch):
    names = scratch(*(f"p{i}" for i in range(40)))
    node_ns = scratch("node")[0]
    links = [PodLink(f"v{i}", n, f"10.9.0.{i + 1}") for i, n in enumerate(names)]
    add_pod_links(node_ns, links, 1500)
    assert delete_netns(NETNS, [*names, names[0] + "-never-made"]) == {}
    assert not set(names) & set(os.listdir(NETNS))
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not any(n in listed.split() for n in names)
    deadline = time.monotonic() + 30  # the kernel destroys a namespace, and its veths, asynchronously
    while [x for x in _ip("-n", node_ns, "link", "show") if x["ifname"].startswith("v")]:
        assert time.monotonic() < deadline, "the pods' veths outlived their namespaces"
        time.sleep(0.1)


def test_mount_points_are_links_and_a_taken_name_leaves_none(scratch):
    tag = secrets.token_hex(2)
    names = [f"tb-{tag}-m{i}" for i in range(5)]
    paths = _mount_points(NETNS, names)
    try:
        assert {os.stat(p).st_ino for p in paths} == {os.stat(paths[0]).st_ino}  # one inode, five names
        assert os.stat(paths[0]).st_nlink == 5
        with pytest.raises(KernelError, match="File exists"):
            _mount_points(NETNS, [f"tb-{tag}-new", names[3]])
        assert not os.path.exists(f"{NETNS}/tb-{tag}-new")  # what the failed call made is gone
    finally:
        assert delete_netns(NETNS, names) == {}  # none mounted: each still unlinked
    assert not [n for n in os.listdir(NETNS) if n.startswith(f"tb-{tag}-")]
