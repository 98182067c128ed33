"""The fault model (issue 16), without root: validation, defaults, the operations that inject
and undo each kind, the node lifecycle as re-planning, experiments' fault actions and timers,
the shell's words, the BGP hold time, and the measurements over synthetic probe rows."""

from __future__ import annotations

import pathlib
import textwrap

import pandas as pd
import pytest

from testbed.analysis import faults as measures
from testbed.errors import SpecError
from testbed.experiment.load import load_experiment
from testbed.faults import lifecycle
from testbed.faults.decode import parse_words
from testbed.faults.model import Fault, FaultState, Recover, Timers, check_timers, problems, resolve
from testbed.faults.ops import Control, Link, Nft, Tc, loss_script, plan_ops
from testbed.plan import bird
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

REPO = pathlib.Path(__file__).resolve().parents[2]
THREE = str(REPO / "topologies" / "three-nodes.yaml")
DEMO = str(REPO / "manifests" / "services-demo.yaml")
ECHO = str(REPO / "manifests" / "routing-echo.yaml")


@pytest.fixture(scope="module")
def three():
    spec, man = load_topology(THREE), load_manifests([DEMO])
    return spec, man, plan_cluster(spec, man, seed=4)


def _racks(mode: str):
    spec, man = load_topology(str(REPO / "topologies" / f"routing-racks-{mode}.yaml")), load_manifests([ECHO])
    return spec, man, plan_cluster(spec, man, seed=1)


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault, field, fragment",
    [
        (Fault("loss", node="kind-wrker", percent=5), "node", "no node named 'kind-wrker' (known: kind-control-plane"),
        (Fault("partition", rack="rack2"), "rack", "no racks"),
        (Fault("partition", node="kind-worker"), "node", "partition does not take a node (it takes rack)"),
        (Fault("loss", node="kind-worker", host="laptop", percent=5), "", "give one target"),
        (Fault("link-down"), "", "link-down needs a target: node or host"),
        (Fault("loss", node="kind-worker", percent=0), "percent", "[1, 100]"),
        (Fault("rate", node="kind-worker", rate="fast"), "rate", "like 10mbit"),
        (Fault("rate", node="kind-worker", rate="1bit"), "rate", "8kbit to 100gbit"),
        (Fault("mtu", node="kind-worker", mtu=100), "mtu", "[576, 9000]"),
        (Fault("bird-down", node="kind-worker"), "node", "needs routing bgp (this cluster routes with host-gw)"),
        (Fault("dns-down", pod="client"), "pod", "default/client is not a cluster DNS replica"),
        (Fault("kill-pod", pod="nope"), "pod", "no pod named 'nope'"),
        (Fault("delay", node="kind-worker"), "", "sch_netem"),
        (Fault("jitter", node="kind-worker"), "", "jitter is not emulated: it needs the kernel module sch_netem"),
        (Fault("explode", node="kind-worker"), "kind", "unknown fault kind 'explode'"),
    ],
)
def test_a_fault_that_cannot_apply_says_why(three, fault, field, fragment):
    found = problems(fault, three[2])
    assert any(f == field and fragment in m for f, m in found), found


def test_good_faults_have_no_problems(three):
    plan = three[2]
    for fault in (
        Fault("node-down", node="kind-worker2"),
        Fault("link-down", host="laptop"),
        Fault("loss", node="kind-worker", percent=100),
        Fault("rate", host="laptop", rate="10mbit"),
        Fault("mtu", node="kind-worker"),
        Fault("kill-pod", pod="default/client"),
        Fault("delete-pod", pod="client"),
        Fault("dns-down"),
        Fault("kube-proxy-down", node="kind-worker"),
    ):
        assert problems(fault, plan) == [], fault
    assert problems(Fault("loss", node="kind-worker"), plan, recovering=True) == []  # a recovery names no percent


def test_defaults_are_filled_from_the_cluster(three):
    plan = three[2]
    first_dns = sorted(p.full_name for p in plan.pods if p.served_by == "dnsmasq")[0]
    assert resolve(Fault("dns-down"), plan).pod == first_dns
    assert resolve(Fault("mtu", node="kind-worker"), plan).mtu == 1450  # the pods' 1500 minus VXLAN's 50
    assert resolve(Fault("kill-pod", pod="client"), plan).pod == "default/client"


def test_timers_have_upstream_defaults_and_bounds():
    t = Timers()
    assert (t.node_monitor_grace_period, t.toleration_seconds, t.time_scale) == (40.0, 300.0, 1.0)
    assert check_timers(t) == []
    assert Timers(time_scale=0.01).scaled(40) == pytest.approx(0.4)
    assert [f for f, _ in check_timers(Timers(time_scale=0))] == ["timeScale"]
    assert [f for f, _ in check_timers(Timers(time_scale=1.0, toleration_seconds=3600))] == ["timeScale"]  # 1 h
    assert [f for f, _ in check_timers(Timers(node_monitor_grace_period=-1))] == ["nodeMonitorGracePeriod"]


def test_fault_state_injects_once_and_recovers_once():
    state = FaultState()
    loss = Fault("loss", node="a", percent=5)
    assert state.inject(loss) is None
    assert "already active" in (state.inject(Fault("loss", node="a", percent=9)) or "")
    assert state.inject(Fault("link-down", node="b")) is None
    assert state.inject(Fault("delete-pod", pod="x/y")) is None and len(state.active) == 2  # nothing to undo
    assert "no undo" in (state.recover(Recover(Fault("delete-pod", pod="x/y")))[1] or "")
    undone, error = state.recover(Recover(Fault("loss", node="a")))
    assert error is None and undone == [loss]
    assert "is not active (active: link-down on node b)" in (state.recover(Recover(Fault("loss", node="a")))[1] or "")
    undone, error = state.recover(Recover(None))
    assert error is None and [f.kind for f in undone] == ["link-down"] and not state.active


# -- operations --------------------------------------------------------------------------------


def test_link_faults_act_on_the_switch_end_and_come_back_up(three):
    plan = three[2]
    key = plan.node("kind-worker").key
    ops = plan_ops(plan, Fault("link-down", node="kind-worker"))
    assert ops.inject == (Link(key, "eth0", True, "down"),) and ops.undo == (Link(key, "eth0", True, "up"),)
    mtu = plan_ops(plan, resolve(Fault("mtu", node="kind-worker"), plan))
    assert mtu.inject == (Link(key, "eth0", True, "", 1450),) and mtu.undo == (Link(key, "eth0", True, "", 1500),)


def test_a_partition_downs_the_routers_port_to_the_rack():
    _, _, plan = _racks("vxlan")
    router = plan.network.routers[0]
    dev = next(i.dev for i in router.interfaces if i.subnet == "rack2")
    ops = plan_ops(plan, Fault("partition", rack="rack2"))
    assert ops.inject == (Link(router.key, dev, True, "down"),) and ops.undo == (Link(router.key, dev, True, "up"),)


def test_loss_is_an_nftables_netdev_table_dropping_by_random_number(three):
    plan = three[2]
    key = plan.node("kind-worker").key
    ops = plan_ops(plan, Fault("loss", node="kind-worker", percent=25))
    assert ops.inject == (Nft(key, loss_script("tbfault_loss_eth0", "eth0", 25)),)
    assert ops.undo == (Nft(key, "delete table netdev tbfault_loss_eth0\n"),)
    script = loss_script("t", "eth0", 25)
    assert script.count("numgen random mod 100 < 25 drop") == 2
    assert 'hook ingress device "eth0"' in script and 'hook egress device "eth0"' in script


def test_rate_is_a_token_bucket_at_both_ends(three):
    plan = three[2]
    ops = plan_ops(plan, Fault("rate", host="laptop", rate="10mbit"))
    assert [(op.peer, op.args[:5]) for op in ops.inject if isinstance(op, Tc)] == [
        (False, ("replace", "dev", "{dev}", "root", "tbf")),
        (True, ("replace", "dev", "{dev}", "root", "tbf")),
    ]
    assert ops.inject[0].args[5:9] == ("rate", "10mbit", "burst", "12500")  # 10 ms of 10 Mbit/s
    assert all(op.args == ("del", "dev", "{dev}", "root") and not op.check for op in ops.undo)


def test_node_down_stops_everything_on_the_node_then_plays_the_lifecycle(three):
    plan = three[2]
    node = plan.node("kind-control-plane")  # the CoreDNS replicas run there
    ops = plan_ops(plan, Fault("node-down", node=node.name))
    dns = sorted(p.full_name for p in plan.pods_on(node.name))
    assert ops.inject == (
        Link(node.key, "eth0", True, "down"),
        *(Control("stop-dns", p) for p in dns),
        Control("pause-proxy", node.name),
        Control("node-lifecycle-down", node.name),
    )
    assert ops.undo[0] == Link(node.key, "eth0", True, "up") and ops.undo[-1] == Control("node-lifecycle-up", node.name)
    bgp = _racks("bgp")[2]
    ops = plan_ops(bgp, Fault("node-down", node="kind-worker2"))
    assert Control("freeze-bird", "kind-worker2") in ops.inject and Control("thaw-bird", "kind-worker2") in ops.undo


def test_process_faults_are_controls_with_their_undo(three):
    plan = three[2]
    assert plan_ops(plan, Fault("kill-pod", pod="default/client")).undo == (Control("open-pod", "default/client"),)
    assert plan_ops(plan, Fault("delete-pod", pod="default/client")).undo == ()
    assert plan_ops(plan, Fault("kube-proxy-down", node="kind-worker")).inject == (
        Control("pause-proxy", "kind-worker"),
    )
    bird_down = plan_ops(_racks("bgp")[2], Fault("bird-down", node="kind-worker"))
    assert bird_down.inject == (Control("freeze-bird", "kind-worker"), Control("wait-withdrawn", "kind-worker"))


# -- the node lifecycle -----------------------------------------------------------------------


def test_not_ready_endpoints_leave_kube_proxys_rules(three):
    from testbed.kubeproxy import render

    plan = three[2]
    down = {p.ip for p in plan.pods_on("kind-worker2") if p.name.startswith("web-")}
    assert len(down) == 2
    after = lifecycle.endpoints_not_ready_on(plan, ["kind-worker2"])
    eps = after.services.endpoints("default", "web")
    assert {e.ip for e in eps if not e.ready} == down and all(e.ready for e in eps if e.ip not in down)
    rules = render(after.kube_proxy_rulesets["kind-worker"])
    assert not any(ip in rules for ip in down)
    assert all(ip in render(plan.kube_proxy_rulesets["kind-worker"]) for ip in down)
    assert lifecycle.endpoints_not_ready_on(plan, []) is plan


def test_eviction_replaces_the_pods_on_other_nodes_and_taints_keep_them_off(three):
    spec, man, plan = three
    tainted = lifecycle.tainted(spec, "kind-worker2")
    taints = next(n.taints for n in tainted.nodes if n.name == "kind-worker2")
    assert {(t.key, t.effect) for t in taints} == {
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
    }
    man2, plan2, evicted = lifecycle.evict(tainted, man, plan, "kind-worker2")
    assert evicted == sorted(p.full_name for p in plan.pods_on("kind-worker2"))
    assert not plan2.pods_on("kind-worker2")
    webs = [p for p in plan2.pods if p.name.startswith("web-")]
    assert len(webs) == 3 and {p.node for p in webs} == {"kind-worker"}
    assert lifecycle.untainted(tainted, "kind-worker2") == spec


def test_a_pod_deleted_at_once_is_replaced_with_a_new_name(three):
    spec, man, plan = three
    web = next(p for p in plan.pods if p.name.startswith("web-"))
    _, after = lifecycle.delete_pods(spec, man, plan, [web.full_name])
    names = {p.name for p in after.pods if p.name.startswith("web-")}
    assert web.name not in names and len(names) == 3
    man2, after2 = lifecycle.delete_pods(spec, man, plan, ["default/client"])  # a bare pod is gone for good
    assert after2.find_pod("client") is None and not any(p.ref.name == "client" for p in man2.pods)


# -- experiments --------------------------------------------------------------------------------


def _experiment(tmp_path, steps: str, timers: str = "", topology: str = THREE) -> str:
    path = tmp_path / "exp.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        apiVersion: testbed/v1alpha1
        kind: Experiment
        metadata: {{name: x}}
        spec:
          topology: {topology}
          manifests: [{DEMO}]
          seed: 4
        """)
        + (f"  timers: {timers}\n" if timers else "")
        + "  steps:\n"
        + textwrap.indent(textwrap.dedent(steps), "    ")
    )
    return str(path)


GROUP = "{name: g, from: {pods: {names: [client]}}, to: {service: {name: web}}}"


def _error(path: str) -> str:
    with pytest.raises(SpecError) as err:
        load_experiment(path)
    return str(err.value)


def test_experiment_faults_and_timers_load(tmp_path):
    path = _experiment(
        tmp_path,
        f"- name: a\n  actions: [{{fault: {{kind: loss, node: kind-worker, percent: 10}}}}]\n  probes: [{GROUP}]\n"
        "- name: b\n  actions: [{recover: {kind: loss, node: kind-worker}}, {fault: {kind: dns-down}}]\n"
        "- name: c\n  actions: [{recover: all}]\n",
        timers="{timeScale: 0.01, tolerationSeconds: 60}",
    )
    exp = load_experiment(path)
    assert exp.timers == Timers(toleration_seconds=60.0, time_scale=0.01)
    assert exp.steps[0].actions == (Fault("loss", node="kind-worker", percent=10),)
    assert exp.steps[1].actions == (Recover(Fault("loss", node="kind-worker")), Fault("dns-down"))
    assert exp.steps[2].actions == (Recover(None),)


@pytest.mark.parametrize(
    "action, field, fragment",
    [
        ("{fault: {kind: delay, node: kind-worker}}", "spec.steps[0].actions[0].fault.kind", "sch_netem"),
        ("{fault: {kind: loss, node: kind-wrkr, percent: 5}}", "spec.steps[0].actions[0].fault.node", "no node named"),
        ("{fault: {kind: loss, node: kind-worker, percent: 500}}", "spec.steps[0].actions[0].fault.percent", "500"),
        ("{fault: {kind: loss, node: kind-worker, colour: red}}", "spec.steps[0].actions[0].fault.colour", "unknown"),
        ("{recover: {kind: loss, node: kind-worker}}", "spec.steps[0].actions[0].recover", "is not active"),
        ("{fault: {kind: bird-down, node: kind-worker}}", "spec.steps[0].actions[0].fault.node", "needs routing bgp"),
    ],
)
def test_bad_fault_actions_are_located(tmp_path, action, field, fragment):
    message = _error(_experiment(tmp_path, f"- name: a\n  actions: [{action}]\n"))
    assert f": {field}: " in message and fragment in message, message


def test_a_fault_injected_twice_is_refused_at_its_step(tmp_path):
    fault = "{fault: {kind: kube-proxy-down, node: kind-worker}}"
    path = _experiment(tmp_path, f"- name: a\n  actions: [{fault}]\n- name: b\n  actions: [{fault}]\n")
    assert "spec.steps[1].actions[0].fault: kube-proxy-down on node kind-worker is already active" in _error(path)


def test_bad_timers_are_refused(tmp_path):
    path = _experiment(tmp_path, f"- name: a\n  probes: [{GROUP}]\n", timers="{timeScale: 0, colour: 1}")
    message = _error(path)
    assert "spec.timers.timeScale: expected a factor in (0, 1]" in message and "spec.timers.colour" in message


def test_an_evicted_pod_cannot_be_named_after_the_node_failed(tmp_path, three):
    victim = next(p.name for p in three[2].pods_on("kind-worker2"))
    path = _experiment(
        tmp_path,
        "- name: a\n  actions: [{fault: {kind: node-down, node: kind-worker2}}]\n"
        f"  probes: [{{name: g, from: {{pods: {{names: [client]}}}}, to: {{pods: {{names: [{victim}]}}}}}}]\n",
    )
    assert f"no pod named '{victim}' at this step" in _error(path)


def test_the_shipped_fault_experiments_load():
    for path in sorted((REPO / "experiments").glob("fault-*.yaml")):
        exp = load_experiment(str(path))
        assert any(isinstance(a, Fault) for s in exp.steps for a in s.actions), path


# -- the shell's words -------------------------------------------------------------------------


def test_shell_words_make_faults():
    assert parse_words(["loss", "node=kind-worker", "percent=20"]) == (
        Fault("loss", node="kind-worker", percent=20),
        "",
    )
    assert parse_words(["node-down", "node=w", "evict=false"])[0] == Fault("node-down", node="w", evict=False)
    assert "sch_netem" in parse_words(["delay", "node=w"])[1]
    assert "expected key=value" in parse_words(["loss", "node"])[1]
    assert "percent: expected a number" in parse_words(["loss", "percent=ten"])[1]
    assert "usage" in parse_words([])[1]


# -- BGP's hold time -----------------------------------------------------------------------------


def test_bgp_hold_time_is_configurable(tmp_path):
    from testbed.plan.network import BgpPeerPlan

    peers = [BgpPeerPlan("kind-worker", "192.168.1.3", 64512, "mesh", False)]
    text = bird.node_config("n", "192.168.1.2", 64512, "10.244.0.0/24", "10.244.0.0/16", peers, hold_time=6)
    assert "  hold time 6;\n  keepalive time 2;\n" in text and bird.hold_time_of(text) == 6
    assert bird.hold_time_of(bird.node_config("n", "192.168.1.2", 64512, "10.244.0.0/24", "10.244.0.0/16", peers)) == 30
    source = (REPO / "topologies" / "routing-l2-bgp.yaml").read_text()
    topo = tmp_path / "t.yaml"
    topo.write_text(source.replace("bgp: {", "bgp: {holdTime: 9, ", 1))
    plan = plan_cluster(load_topology(str(topo)), load_manifests([ECHO]), seed=1)
    assert {bird.hold_time_of(s.config) for s in plan.network.bgp} == {9}
    topo.write_text(source.replace("bgp: {", "bgp: {holdTime: 2, ", 1))
    with pytest.raises(SpecError, match=r"bgp.holdTime: 2 is out of range \[3, 65535\]"):
        load_topology(str(topo))


# -- measurements --------------------------------------------------------------------------------


def _rows(outcomes: list[tuple[float, str]], group: str = "g", expected: str = "any") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "step": "s:during",
                "group": group,
                "timestamp": t,
                "outcome": o,
                "expected_outcome": expected,
                "outcome_ok": expected == "any" or o == expected,
            }
            for t, o in outcomes
        ]
    )


def test_window_detection_and_recovery_of_a_fault():
    # rounds every 0.1 s from t=100 (two probes each); the fault at 100.25; failures in the
    # rounds at 100.3, 100.4 and 100.6 (one of two), detection at 100.45, all good from 100.7
    rounds = [100.0 + i / 10 for i in range(10)]
    bad = {100.3: 2, 100.4: 2, 100.6: 1}
    outcomes = [(t, "timeout" if k < bad.get(round(t, 1), 0) else "connected") for t in rounds for k in range(2)]
    events = [
        {"time": 100.25, "step": "s", "event": "inject", "kind": "node-down", "target": "node w"},
        {"time": 100.45, "step": "s", "event": "not-ready", "kind": "node-down", "target": "node w"},
    ]
    (line,) = measures.timelines(_rows(outcomes), events)
    assert [(r.ok, r.total) for r in line.rounds][2:7] == [(2, 2), (0, 2), (0, 2), (2, 2), (1, 2)]
    (fig,) = measures.fault_figures(line, events)
    assert (fig.failed, fig.probes) == (5, 16)  # from the round before the fault (100.2) on
    assert fig.window == pytest.approx(0.3)
    assert fig.detect == pytest.approx(0.2)
    assert fig.recover == pytest.approx(0.45)
    assert measures.strip(line) == "...1xx2.o..."


def test_a_fault_that_failed_nothing_has_no_window():
    events = [{"time": 100.05, "step": "s", "event": "inject", "kind": "loss", "target": "node w"}]
    line = measures.timelines(_rows([(100.0, "connected"), (100.1, "connected")], expected="connected"), events)[0]
    (fig,) = measures.fault_figures(line, events)
    assert (fig.failed, fig.window, fig.detect, fig.recover) == (0, None, None, None)
    assert measures.timelines(_rows([(100.0, "connected")]), []) == []  # no fault, no timeline


def test_a_recovery_in_its_own_step_has_its_own_figures():
    events = [{"time": 100.05, "step": "s", "event": "recover", "kind": "partition", "target": "rack r"}]
    outcomes = [(100.0, "timeout"), (100.1, "timeout"), (100.2, "connected"), (100.3, "connected")]
    (line,) = measures.timelines(_rows(outcomes), events)
    (fig,) = measures.fault_figures(line, events)
    assert fig.fault == "partition on rack r (recovered)"
    assert (fig.failed, fig.window, fig.detect) == (2, pytest.approx(0.1), None)
    assert fig.recover == pytest.approx(0.15)
