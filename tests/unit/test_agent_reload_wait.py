"""AgentProcess.serve(wait=False) (emu/agent_proc.py): the agents are signalled and their READY is
read later (`wait_reloaded`), so that kube-proxy renders and writes its rules ahead meanwhile and
commits them once the new pods are served (emu/controllers.py). A stand-in agent that answers a
SIGHUP with READY after 0.3 s; no root, no namespace."""

from __future__ import annotations

import os
import sys
import textwrap
import time

import pytest

from testbed.emu.agent_proc import AgentProcess, _said_ready
from testbed.emu.daemon import Daemon
from testbed.emu.ledger import Ledger
from testbed.emu.runner import Runner
from testbed.errors import DaemonError
from testbed.plan.build import plan_cluster

from ._services import world

AGENT = textwrap.dedent(
    """
    import signal, sys, time
    def reload(*_):
        time.sleep(0.3)
        print("READY 1 errors=%s" % sys.argv[1], flush=True)
    signal.signal(signal.SIGHUP, reload)
    print("READY 1 errors=0", flush=True)
    while True:
        time.sleep(1)
    """
)


@pytest.fixture
def agent(tmp_path, monkeypatch):
    monkeypatch.setattr("testbed.emu.ledger.STATE_DIR", str(tmp_path))
    program = tmp_path / "agent.py"
    program.write_text(AGENT)
    topology, manifests, _, _ = world()
    pods = plan_cluster(topology, manifests, 1).pods
    ledger = Ledger(tag="abcd", owner=1)
    os.makedirs(ledger.dir)
    process = AgentProcess(ledger, Runner())
    process.max_files = 1 << 20

    def start(errors: int = 0) -> AgentProcess:
        process._assign(pods[:-1])
        process.pods = tuple(pods[:-1])
        shard = process.shards[0]
        shard.daemon = Daemon(
            "the agent",
            [sys.executable, str(program), str(errors)],
            str(tmp_path / "agent.log"),
            ready=_said_ready,
            stdin_pipe=True,
            stdout_pipe=True,
        )
        shard.daemon.start(process.runner)
        shard.write("abcd", process.closed)
        return process

    yield start, pods
    process.stop()


def test_serve_without_waiting_returns_at_once_and_wait_reloaded_reads_the_ready(agent):
    start, pods = agent
    process = start()
    t = time.monotonic()
    process.serve(pods, wait=False)
    assert len(process.reloading) == 1  # signalled, its READY not read
    process.wait_reloaded()
    assert time.monotonic() - t >= 0.3 and process.reloading == []
    process.wait_reloaded()  # nothing pending: returns at once
    t = time.monotonic()
    process.serve(pods[:-2])  # waiting, as before
    assert time.monotonic() - t >= 0.3 and process.reloading == []


def test_a_reload_left_pending_is_read_by_the_next_serve_or_wait_started(agent):
    start, pods = agent
    process = start()
    process.serve(pods, wait=False)
    process.wait_started()
    assert process.reloading == []
    process.serve(pods[:-2], wait=False)
    t = time.monotonic()
    process.serve(pods, wait=False)  # the pending READY is read first, then the new signal sent
    assert time.monotonic() - t >= 0.3 and len(process.reloading) == 1
    process.wait_reloaded()


def test_a_failed_reload_raises_where_it_is_awaited(agent):
    start, pods = agent
    process = start(errors=1)
    process.serve(pods, wait=False)  # the failure is not known yet
    with pytest.raises(DaemonError, match="could not serve every pod"):
        process.wait_reloaded()


def test_the_cluster_has_kube_proxy_commit_only_once_the_agent_served_the_new_pods(tmp_path, monkeypatch):
    """emu/cluster.py wires the wait: the Agent controller signals a change's reload without
    waiting, and both proxiers call the agent's wait_reloaded before their first commit."""
    from testbed.emu.cluster import EmulatedCluster
    from testbed.emu.controllers import Agent, KubeProxy
    from testbed.emu.kubeproxy6 import KubeProxy6

    monkeypatch.setattr("testbed.emu.ledger.STATE_DIR", str(tmp_path))
    topology, manifests, _, _ = world()
    cluster = EmulatedCluster(plan_cluster(topology, manifests, 1))
    controllers = cluster._controllers(Ledger(tag="abcd", owner=1))
    order = [type(c) for c in controllers]
    agent = next(c for c in controllers if isinstance(c, Agent)).agent
    proxies = [c for c in controllers if isinstance(c, KubeProxy)]
    assert [type(p) for p in proxies] == [KubeProxy, KubeProxy6]
    assert order.index(Agent) + 1 == order.index(KubeProxy)  # nothing in between the signal and the wait
    assert all(p.ready == agent.wait_reloaded for p in proxies)
