"""Pod lifecycle without root (issue 19): the manifests' probes and hooks, kubelet's state machine
in virtual time (thresholds, preStop, grace period, gates, liveness, lost nodes), the
EndpointSlice controller's and every kube-proxy's delays, the conditions the slices carry, and
kube-proxy's choice among ready and serving-terminating endpoints (upstream's
CategorizeEndpoints cases)."""

from __future__ import annotations

import os

import pytest

from testbed.errors import SpecError
from testbed.kubeproxy.common import _categorize
from testbed.lifecycle.delays import Delays, decode_delays
from testbed.lifecycle.sim import LifecycleSim
from testbed.plan.service_model import ResolvedEndpoint, ServicePlan, ServicePortPlan
from testbed.spec.decode import Doc, Problems
from testbed.spec.lifecycle import PodLifecycle, PreStop, Probe
from testbed.spec.workloads import load_manifests

POD = """
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  terminationGracePeriodSeconds: 12
  readinessGates: [{conditionType: example.com/lb-ready}]
  containers:
    - name: app
      ports: [{name: http, containerPort: 8080}]
      readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 2, failureThreshold: 2}
      livenessProbe: {tcpSocket: {port: 8080}}
      startupProbe: {exec: {command: [cat, /ready]}, periodSeconds: 1}
      lifecycle: {preStop: {sleep: {seconds: 7}}}
    - name: side
      readinessProbe: {grpc: {port: 9000}}
      lifecycle: {preStop: {exec: {command: [sh, -c, drain]}}}
"""


def load(tmp_path, text: str):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return load_manifests([str(path)])


def test_probes_hooks_grace_and_gates_are_decoded_with_core_v1_defaults(tmp_path):
    life = load(tmp_path, POD).pods[0].template.lifecycle
    assert life.readiness == (
        Probe("httpGet", "http", period=2, failure_threshold=2),
        Probe("grpc", 9000),
    )
    assert life.liveness == (Probe("tcpSocket", 8080),)  # period 10, timeout 1, thresholds 1 and 3
    assert life.startup == (Probe("exec", 0, period=1),)
    assert life.pre_stop == (PreStop("sleep", 7), PreStop("exec"))
    assert life.pre_stop_seconds == 7
    assert (life.grace_period, life.readiness_gates) == (12, ("example.com/lb-ready",))


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("readinessProbe: {periodSeconds: 5}", "readinessProbe: must have exactly one of httpGet"),
        (
            "readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 0}",
            "readinessProbe.periodSeconds: 0 is out of range",
        ),
        ("readinessProbe: {tcpSocket: {port: 80}, exec: {command: [x]}}", "must have exactly one of"),
        ("livenessProbe: {httpGet: {path: /}}", "livenessProbe.httpGet.port: required field is missing"),
        ("lifecycle: {preStop: {sleep: {seconds: -1}}}", "preStop.sleep.seconds: -1 is out of range"),
        ("lifecycle: {preStop: {sleep: {}, exec: {command: [x]}}}", "must have exactly one of sleep, exec, httpGet"),
        ("startupProbe: {tcpSocket: {port: 80}, sucessThreshold: 1}", "unknown field 'sucessThreshold'"),
    ],
)
def test_bad_lifecycle_fields_are_one_located_line(tmp_path, field, message):
    text = f"""
apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  containers:
    - name: app
      {field}
"""
    with pytest.raises(SpecError) as err:
        load(tmp_path, text)
    assert message in str(err.value)
    assert "spec.containers[0]." in str(err.value) and "\n" not in str(err.value).strip()


def test_delays_decode_with_upstream_defaults_and_bounds():
    assert Delays().kube_proxy_min_sync_period == 1.0 and Delays().kube_proxy_sync_period == 30.0
    assert Delays().endpoint_slice_batch == 0.0 and Delays().node_monitor_grace_period == 40.0
    problems = Problems()
    got = decode_delays(Doc({"timeScale": 0.5, "kubeProxyMinSyncPeriod": 2}, "x.yaml", problems))
    assert (got.time_scale, got.kube_proxy_min_sync_period, problems.items) == (0.5, 2.0, [])
    for bad in ({"timeScale": 0}, {"kubeProxyWatchDelay": -1}, {"podDeleteDelay": "1s"}, {"typo": 1}):
        problems = Problems()
        decode_delays(Doc(bad, "x.yaml", problems))
        assert len(problems.items) == 1, bad


def events(sim: LifecycleSim, kind: str, pod: str = "") -> list[float]:
    return [e.t for e in sim.events if e.kind == kind and (not pod or e.pod == pod)]


QUIET = Delays(endpoint_slice_watch=0.0, kube_proxy_watch=0.0, kube_proxy_watch_spread=0.0, container_start=0.5)


def test_readiness_failure_and_recovery_follow_the_probe_ticks_and_thresholds():
    sim = LifecycleSim(["n1"], QUIET)
    life = PodLifecycle(readiness=(Probe("httpGet", 80, period=2, failure_threshold=3, success_threshold=2),))
    sim.create("d/p", "n1", life)
    sim.run_until(5)
    # started at 0.5, ticks at 0.5, 2.5, 4.5...: two successes needed, Ready at 2.5
    assert events(sim, "started") == [0.5] and events(sim, "ready") == [2.5]
    sim.set_probe("d/p", "readiness", False)  # first failing tick 6.5, third 10.5
    sim.run_until(20)
    assert events(sim, "not-ready") == [10.5]
    sim.set_probe("d/p", "readiness", True)  # ticks 20.5, 22.5
    sim.run_until(30)
    assert events(sim, "ready") == [2.5, 22.5]
    assert "d/p" not in sim.proxy_view("n1").not_ready


def test_without_a_readiness_probe_a_started_pod_is_ready_and_a_failing_one_changes_nothing():
    sim = LifecycleSim(["n1"], QUIET)
    sim.create("d/p", "n1")
    sim.run_until(1)
    sim.set_probe("d/p", "readiness", False)  # no readiness probe: nobody asks
    sim.run_until(60)
    assert events(sim, "ready") == [0.5] and events(sim, "not-ready") == []


def test_startup_probe_gates_readiness_and_liveness_restarts_the_container():
    sim = LifecycleSim(["n1"], QUIET)
    life = PodLifecycle(
        readiness=(Probe("tcpSocket", 80, period=1),),
        liveness=(Probe("tcpSocket", 80, period=5, failure_threshold=2),),
        startup=(Probe("exec", initial_delay=3, period=1),),
    )
    sim.create("d/p", "n1", life)
    sim.run_until(10)
    assert events(sim, "ready") == [3.5]  # started 0.5, startup passes at 3.5, readiness at once
    sim.set_probe("d/p", "liveness", False)  # liveness ticks from 0.5: 10.5, 15.5 -> killed at 15.5
    sim.run_until(15.6)
    assert events(sim, "restarted") == [15.5] and events(sim, "not-ready") == [15.5]
    sim.set_probe("d/p", "liveness", True)
    sim.run_until(30)
    assert events(sim, "started") == [0.5, 16.0] and events(sim, "ready") == [3.5, 19.0]


def test_readiness_gates_hold_ready_until_their_condition_is_true():
    sim = LifecycleSim(["n1"], QUIET)
    sim.create("d/p", "n1", PodLifecycle(readiness_gates=("example.com/lb",)))
    sim.run_until(5)
    assert events(sim, "ready") == []
    sim.set_gate("d/p", "example.com/lb", True)
    sim.run_until(6)
    assert events(sim, "ready") == [5.0]


@pytest.mark.parametrize(
    ("pre_stop", "grace", "shutdown", "sigterm", "exit"),
    [
        (0, 30, 0.0, 10.0, 10.0),  # no hook: SIGTERM at once, the app exits at once
        (5, 30, 0.0, 15.0, 15.0),  # a preStop sleep keeps it running 5 s
        (5, 30, 100.0, 15.0, 40.0),  # a slow app is killed at the end of the grace period
        (40, 30, 100.0, 40.0, 42.0),  # a hook longer than the grace period: SIGTERM at 30 s, 2 s more
    ],
)
def test_termination_runs_pre_stop_then_sigterm_within_the_grace_period(pre_stop, grace, shutdown, sigterm, exit):
    sim = LifecycleSim(["n1"], Delays(app_shutdown=shutdown, pod_delete=0.1))
    hooks = (PreStop("sleep", pre_stop),) if pre_stop else ()
    sim.adopt("d/p", "n1", PodLifecycle(pre_stop=hooks, grace_period=grace))
    sim.run_until(10)
    sim.delete("d/p")
    assert "d/p" in sim.api_view().terminating
    sim.run_until(100)
    assert events(sim, "sigterm") == [sigterm] and events(sim, "exited") == [exit]
    assert events(sim, "removed") == [pytest.approx(exit + 0.1)]
    assert "d/p" not in sim.proxy_view("n1").present


def test_kube_proxy_syncs_at_most_once_per_min_sync_period_each_node_after_its_watch_delay():
    delays = Delays(endpoint_slice_watch=0.05, kube_proxy_watch=0.1, kube_proxy_watch_spread=0.2)
    sim = LifecycleSim(["a", "b", "c"], delays)
    sim.adopt("d/old", "a")
    sim.create("d/new", "b")  # not ready: the slices change at 0.05
    sim.run_until(3)
    syncs = [(e.t, e.node) for e in sim.events if e.kind == "proxy-sync"]
    # the not-ready endpoint: seen at 0.15 / 0.25 / 0.35; ready at 0.5, written 0.55, but each
    # node waits a second after its last sync
    assert syncs == [(0.15, "a"), (0.25, "b"), (0.35, "c"), (1.15, "a"), (1.25, "b"), (1.35, "c")]
    sim.delete("d/old")  # at 3: written 3.05, each node syncs at once (its last sync is old)
    sim.run_until(3.2)
    assert "d/old" in sim.proxy_view("a").terminating and "d/old" not in sim.proxy_view("c").terminating


def test_the_rollout_race_window_is_the_propagation_and_a_pre_stop_sleep_closes_it():
    """An old pod deleted right after the previous change synced: its process exits at once,
    but the last kube-proxy stops sending it connections only after minSyncPeriod."""
    for hook, expect_window in ((0, True), (5, False)):
        sim = LifecycleSim(["a", "b", "c"], Delays())
        life = PodLifecycle(pre_stop=(PreStop("sleep", hook),) if hook else ())
        sim.adopt("d/old", "a", life)
        sim.create("d/new", "b")
        sim.run_until(0.5)  # new pod ready at 0.5 (container start), written at 0.55
        sim.delete("d/old")  # the Deployment controller scales the old one down at once
        sim.run_until(60)
        exit_t = events(sim, "exited", "d/old")[0]
        # each node stops sending d/old new connections at its first sync after the deletion
        stops = [min(e.t for e in sim.events if e.kind == "proxy-sync" and e.node == n and e.t >= 0.5) for n in "abc"]
        assert stops == [1.15, 1.25, 1.35]  # a second after their previous syncs (0.15, 0.25, 0.35)
        assert (max(stops) > exit_t) is expect_window, (hook, exit_t, stops)


def test_a_node_that_stops_heartbeating_loses_its_pods_endpoints_after_the_grace_period():
    sim = LifecycleSim(["a", "b"], QUIET)
    sim.adopt("d/p", "a")
    sim.adopt("d/q", "b")
    sim.set_node_ready("a", False)
    sim.run_until(39)
    assert not sim.api_view().not_ready
    sim.run_until(41)
    assert sim.api_view().not_ready == frozenset({"d/p"})
    sim.set_node_ready("a", True)
    sim.run_until(42)
    assert not sim.api_view().not_ready
    sim.set_node_ready("b", False, after=0.0)  # a fault injector that does not wait
    sim.run_until(42.5)
    assert sim.api_view().not_ready == sim.proxy_view("a").not_ready == frozenset({"d/q"})


def _svc(**kw) -> tuple[ServicePlan, ServicePortPlan]:
    port = ServicePortPlan("", 80, "TCP", 8080, node_port=30080 if kw.get("external_traffic_policy") else None)
    return ServicePlan(
        "ns", "s", "NodePort" if port.node_port else "ClusterIP", "10.96.0.5", (port,), {"a": "b"}, **kw
    ), port


def ep(ip: str, node: str, ready: bool = True, serving: bool = True, terminating: bool = False) -> ResolvedEndpoint:
    return ResolvedEndpoint(ip, 8080, node, "", ready, serving, terminating)


R1, R2 = ep("10.0.0.1", "n1"), ep("10.0.0.2", "n2")
T1, T2 = ep("10.0.0.3", "n1", False, True, True), ep("10.0.0.4", "n2", False, True, True)
X1 = ep("10.0.0.5", "n1", False, False, True)  # terminating, not serving
N1 = ep("10.0.0.6", "n1", False, False, False)  # not ready


@pytest.mark.parametrize(
    ("kw", "eps", "cluster", "local", "has_any"),
    [
        ({}, (R1, R2, T1, N1), {R1, R2}, set(), True),  # ready ones only
        ({}, (T1, T2, X1, N1), {T1, T2}, set(), True),  # no ready one: serving-terminating fallback
        ({}, (X1, N1), set(), set(), False),  # nothing usable: REJECT
        ({"external_traffic_policy": "Local"}, (R2, T1), {R2}, {T1}, True),  # local falls back on its own
        ({"external_traffic_policy": "Local"}, (R1, T1), {R1}, {R1}, True),
        ({"internal_traffic_policy": "Local"}, (R2, T2), set(), set(), True),  # none local on n1
        ({"internal_traffic_policy": "Local"}, (T1, N1, R2), set(), {T1}, True),
    ],
)
def test_kube_proxy_categorizes_endpoints_as_upstream(kw, eps, cluster, local, has_any):
    svc, port = _svc(**kw)
    got = _categorize(svc, port, eps, "n1")
    assert (set(got.cluster_endpoints), set(got.local_endpoints), got.has_endpoints) == (cluster, local, has_any)


def test_views_fold_into_the_plan_each_node_programming_what_it_has_seen():
    from testbed.kubeproxy.common import service_ports
    from testbed.lifecycle.sim import View
    from testbed.plan.build import plan_cluster
    from testbed.plan.lifecycle import known_pods, with_views
    from testbed.spec.topology import load_topology

    plan = plan_cluster(
        load_topology("topologies/three-nodes.yaml"), load_manifests(["manifests/rollout-race.yaml"]), 19
    )
    known = known_pods([plan])
    web = sorted(p.full_name for p in plan.pods if p.name.startswith("web-") and "prestop" not in p.name)
    everyone = frozenset(known)
    old = View(everyone)  # every pod ready
    gone = web[0]
    now = View(everyone, frozenset({gone}), frozenset({gone}), frozenset({gone}))  # exited, terminating
    later = with_views(plan, now, now, {"kind-control-plane": old, "kind-worker": now, "kind-worker2": now}, known)
    assert later.conditions is not None and set(later.conditions.proxy_views) == {"kind-control-plane"}
    ep = {e.pod: e for e in later.services.endpoints("default", "web")}
    assert (ep[gone.split("/")[1]].ready, ep[gone.split("/")[1]].serving, ep[gone.split("/")[1]].terminating) == (
        False,
        False,
        True,
    )

    def backends(node: str) -> set[str]:
        port = next(
            p
            for p in service_ports(later.conditions.services_of(node, later.services), node)
            if p.service.name == "web"
        )
        return {e.pod for e in port.cluster_endpoints}

    assert gone.split("/")[1] in backends("kind-control-plane")  # behind: still sends to it
    assert gone.split("/")[1] not in backends("kind-worker")
    rules = later.kube_proxy_rulesets
    assert rules["kind-control-plane"] != rules["kind-worker"]
    # the pods the API still has stay planned (their sandboxes stay) until removed
    assert gone in {p.full_name for p in later.pods}
    removed = View(everyone - {gone})
    assert gone not in {p.full_name for p in with_views(plan, removed, removed, {}, known).pods}


def test_the_shell_makes_a_probe_fail_and_shows_endpoint_conditions(capsys):
    from testbed.experiment.changes import SetProbe
    from testbed.lifecycle.sim import View
    from testbed.plan.build import plan_cluster
    from testbed.plan.lifecycle import known_pods, with_views
    from testbed.shell import ClusterShell
    from testbed.spec.topology import load_topology

    manifests = load_manifests(["manifests/rollout-race.yaml"])
    plan = plan_cluster(load_topology("topologies/three-nodes.yaml"), manifests, 19)
    known = known_pods([plan])
    web = sorted(p for p in known if p.startswith("default/web-") and "prestop" not in p)
    asked = []

    def change(action):  # what shell/live.py's driver settles to: the pod not Ready
        asked.append(action)
        view = View(frozenset(known), frozenset({web[0]}) if not action.passes else frozenset())
        return with_views(plan, view, view, {}, known), manifests

    shell = ClusterShell(plan, lambda key: key, lambda ns, argv: 0, change, manifests)
    assert shell.execute(f"probe fail {web[0].split('/')[1]}") == 0
    assert asked == [SetProbe(_selection(web[0]), "readiness", False)]
    out = capsys.readouterr().out
    assert "readiness probe fails: NotReady" in out
    shell.execute("get endpointslices -o wide")
    table = capsys.readouterr().out
    assert any(
        line.startswith("web-") and "prestop" not in line and "2 ready, 1 not ready" in line
        for line in table.splitlines()
    )
    shell.execute("describe endpointslices")
    text = capsys.readouterr().out
    assert f"TargetRef:    Pod/{web[0].split('/')[1]}" in text and "Ready:        false" in text
    assert shell.execute("probe sometimes x") == 2 and "usage: probe fail|pass POD" in capsys.readouterr().out
    assert shell.execute("probe fail nosuch") == 1 and asked[1:] == []


def _selection(full: str):
    from testbed.experiment.model import PodSelection

    namespace, name = full.split("/")
    return PodSelection(namespace=namespace, names=(name,))


EXPERIMENT = """
apiVersion: testbed/v1alpha1
kind: Experiment
metadata: {name: x}
spec:
  topology: %(root)s/topologies/three-nodes.yaml
  manifests: [%(root)s/manifests/rollout-race.yaml]
  %(lifecycle)s
  steps:
    - name: s
      actions: [%(action)s]
"""


@pytest.mark.parametrize(
    ("lifecycle", "action", "message"),
    [
        (
            "lifecycle: {timeScale: 0}",
            "{scale: {deployment: web, replicas: 2}}",
            "spec.lifecycle.timeScale: 0 is out of range",
        ),
        (
            "lifecycle: {kubeProxyMinSync: 1}",
            "{scale: {deployment: web, replicas: 2}}",
            "unknown field 'kubeProxyMinSync'",
        ),
        ("", "{probe: {pods: {names: [nosuch]}, passes: false}}", "probe.pods"),
        (
            "",
            "{probe: {pods: {names: [client]}, probe: sideways, passes: false}}",
            "must be one of readiness, liveness, startup",
        ),
        ("", "{probe: {pods: {names: [client]}}}", "probe.passes: required field is missing"),
    ],
)
def test_bad_lifecycle_settings_and_probe_actions_are_one_located_line(tmp_path, lifecycle, action, message):
    from testbed.experiment.load import load_experiment

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = tmp_path / "x.yaml"
    path.write_text(EXPERIMENT % {"root": root, "lifecycle": lifecycle, "action": action})
    with pytest.raises(SpecError) as err:
        load_experiment(str(path))
    assert message in str(err.value), str(err.value)


def test_lifecycle_settings_and_probe_actions_load(tmp_path):
    from testbed.experiment.changes import SetProbe
    from testbed.experiment.load import load_experiment
    from testbed.experiment.model import PodSelection

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = tmp_path / "x.yaml"
    action = "{probe: {pods: {names: [client]}, probe: liveness, passes: false}}"
    path.write_text(EXPERIMENT % {"root": root, "lifecycle": "lifecycle: {timeScale: 0.5}", "action": action})
    exp = load_experiment(str(path))
    assert exp.lifecycle == Delays(time_scale=0.5)
    assert exp.steps[0].actions == (SetProbe(PodSelection(names=("client",)), "liveness", False),)
