"""The shell's fault commands (shell/faults.py) over a fake Live: what reaches the cluster, and
the one-line errors (no root, no cluster)."""

from __future__ import annotations

import pathlib
from typing import Any

from testbed.faults.model import Fault, Recover, Timers
from testbed.plan.build import plan_cluster
from testbed.shell.core import ClusterShell
from testbed.shell.live import Live
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

REPO = pathlib.Path(__file__).resolve().parents[2]


def _shell() -> tuple[ClusterShell, list[tuple[Any, Timers]]]:
    plan = plan_cluster(
        load_topology(str(REPO / "topologies" / "three-nodes.yaml")),
        load_manifests([str(REPO / "manifests" / "services-demo.yaml")]),
        seed=4,
    )
    calls: list[tuple[Any, Timers]] = []

    def fault(action: Any, timers: Timers):
        calls.append((action, timers))
        return plan, None, ["fault loss 5% on node kind-worker"] if action is None else []

    live = Live(lambda key: f"ns-{key}", lambda ns, argv: 0, fault=fault)
    return ClusterShell(plan, live), calls


def test_fault_and_recover_reach_the_cluster_with_the_timers(capsys):
    shell, calls = _shell()
    assert shell.execute("fault timers timeScale=0.01 tolerationSeconds=60") == 0
    assert "tolerationSeconds=60 s" in capsys.readouterr().out
    assert shell.execute("fault loss node=kind-worker percent=5") == 0
    assert shell.execute("fault list") == 0
    assert "fault loss 5% on node kind-worker" in capsys.readouterr().out
    assert shell.execute("recover loss node=kind-worker") == 0
    assert shell.execute("recover all") == 0
    timers = Timers(toleration_seconds=60.0, time_scale=0.01)
    assert calls == [
        (Fault("loss", node="kind-worker", percent=5), timers),
        (None, timers),
        (Recover(Fault("loss", node="kind-worker")), timers),
        (Recover(None), timers),
    ]
    shell.close()


def test_bad_fault_commands_say_why_in_one_line(capsys):
    shell, calls = _shell()
    for line, fragment in [
        ("fault delay node=kind-worker", "sch_netem"),
        ("fault explode", "unknown fault kind 'explode'"),
        ("fault loss node", "expected key=value"),
        ("fault timers timeScale=0", "timeScale: expected a factor in (0, 1]"),
        ("fault timers colour=1", "expected key=seconds"),
        ("fault", "usage: fault KIND"),
        ("recover", "usage: fault KIND"),
    ]:
        assert shell.execute(line) == 1, line
        out = capsys.readouterr().out
        assert fragment in out and out.count("\n") == 1, (line, out)
    assert calls == []
    shell.close()
