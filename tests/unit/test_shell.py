"""The interactive shell's views and name substitution, without a cluster."""

from __future__ import annotations

import os

from testbed.plan.build import plan_cluster
from testbed.shell import ClusterShell
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests
from testbed.views import get_nodes, get_pods

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _shell(calls):
    plan = plan_cluster(
        load_topology(os.path.join(ROOT, "topologies/three-nodes.yaml")),
        load_manifests([os.path.join(ROOT, "manifests/quickstart-app.yaml")]),
        seed=1,
    )
    return plan, ClusterShell(plan, lambda key: f"ns-{key}", lambda ns, argv: calls.append((ns, argv)) or 0)


def test_commands_run_in_the_named_pod_with_names_replaced_by_ips():
    calls = []
    plan, shell = _shell(calls)
    web = plan.find_pod("web-66849f5996-9q68l")
    shell.onecmd("two-containers ping -c1 web-66849f5996-9q68l")
    shell.onecmd("two-containers wget -qO- http://web-66849f5996-9q68l:80/x")
    shell.onecmd("kind-worker ip route")
    shell.onecmd("laptop ping kind-worker2")
    assert [(ns, argv[-2], argv[-1]) for ns, argv in calls] == [
        ("ns-default_two-containers", "two-containers", f"ping -c1 {web.ip}"),
        ("ns-default_two-containers", "two-containers", f"wget -qO- http://{web.ip}:80/x"),
        ("ns-n1", "kind-worker", "ip route"),
        ("ns-x0", "laptop", "ping 192.168.1.4"),
    ]
    # a shell runs the line (pipes work) in its own UTS namespace named after the pod
    assert calls[0][1][calls[0][1].index("unshare") :][:5] == ["unshare", "--uts", "--", "/bin/sh", "-c"]


def test_unknown_names_run_nothing(capsys):
    calls = []
    _, shell = _shell(calls)
    shell.onecmd("nosuchpod ip addr")
    assert calls == [] and "unknown command or name: nosuchpod" in capsys.readouterr().out


def test_kubectl_like_tables():
    plan, _ = _shell([])
    nodes = get_nodes(plan, wide=True).splitlines()
    assert nodes[0].split()[:3] == ["NAME", "STATUS", "ROLES"]
    assert any(line.startswith("kind-worker2") and "10.244.2.0/24" in line for line in nodes)
    pods = get_pods(plan, wide=True, namespace="default").splitlines()
    assert len(pods) == 1 + len([p for p in plan.pods if p.namespace == "default"])
    assert any("two-containers" in line and "2/2" in line and "kind-worker" in line for line in pods)
