"""kube-proxy's persistent iptables-restore per node (emu/restorer.py), on a real cluster: one
process per node takes every sync, a killed one is replaced by a full restore (the kernel then
holds what a full sync leaves, and packets follow), and none outlives its cluster."""

from __future__ import annotations

import os
import signal

from testbed.emu.cluster import EmulatedCluster
from testbed.emu.controllers import KubeProxy
from testbed.emu.rules import iptables_restore
from testbed.experiment.changes import Scale, apply_action
from testbed.kubeproxy import render
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .conftest import ROOT
from .test_services import APP, _kube_proxy_dump, _nodes_to_echo


def _restorers(prefix: str) -> dict[str, int]:
    """node netns -> pid of each process whose argv[0] is <instance folder>/<netns>/iptables-restore."""
    out: dict[str, int] = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as h:
                    argv0 = h.read().split(b"\0")[0].decode()
            except OSError:
                continue
            if argv0.startswith(prefix) and argv0.endswith("/iptables-restore"):
                out[argv0[len(prefix) :].split("/")[0]] = int(pid)
    return out


def test_one_restore_process_per_node_takes_every_sync_and_a_dead_one_falls_back_to_a_full_restore(no_leftovers):
    spec = load_topology(os.path.join(ROOT, "topologies", "three-nodes.yaml"))
    manifests = load_manifests([APP])
    with EmulatedCluster(plan_cluster(spec, manifests, seed=3)) as c:
        assert c.ledger is not None
        c.manifests = manifests
        prefix = c.ledger.dir + "/"
        proxy = c.controller(KubeProxy)
        first = _restorers(prefix)
        assert set(first) == {c.netns(n.key) for n in c.plan.nodes}
        for node_ns, pid in first.items():  # each in its node's network namespace
            assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{node_ns}").st_ino
        c.manifests, plan = apply_action(Scale("Deployment", "echo", 1), spec, c.manifests, c.plan)
        c.apply(plan)
        assert set(proxy.kinds.values()) == {"partial"} and proxy.fallbacks == 0
        assert _restorers(prefix) == first  # the same processes took the partial syncs

        victim = c.plan.nodes[0]
        os.kill(first[c.netns(victim.key)], signal.SIGKILL)
        c.manifests, plan = apply_action(Scale("Deployment", "echo", 3), spec, c.manifests, c.plan)
        c.apply(plan)
        assert proxy.fallbacks == 1
        assert proxy.kinds[victim.name] == "full" and {proxy.kinds[n.name] for n in c.plan.nodes[1:]} == {"partial"}
        for node in c.plan.nodes:  # what a full reload of the same rules leaves
            dump = _kube_proxy_dump(c, node)
            iptables_restore(c.runner, c.netns(node.key), render(c.plan.kube_proxy_rulesets[node.name], None))
            assert _kube_proxy_dump(c, node) == dump, node.name
        rows = _nodes_to_echo(c, "after")
        assert len({r["answered_by"] for r in rows}) == 3 and all(r["outcome"] == "connected" for r in rows)

        c.manifests, plan = apply_action(Scale("Deployment", "echo", 2), spec, c.manifests, c.plan)
        c.apply(plan)  # the next sync starts a new process on that node
        now = _restorers(prefix)
        assert proxy.kinds[victim.name] == "partial" and now[c.netns(victim.key)] != first[c.netns(victim.key)]
    assert _restorers(prefix) == {}  # ended with the cluster
