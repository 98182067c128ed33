"""Upstream kube-proxy's packet-flow tests with real packets, in both modes (a representative subset).

The unit tests replay every upstream flow over the rules (tests/upstream/kube_proxy_flows.yaml);
here a subset runs through a real emulated cluster. Each upstream case is rebuilt as manifests:
its test-node is kind-worker, every other node (or none) kind-worker2; each endpoint address a
pod pinned there with the slice's ports; each Service keeps its ports, policies and (shifted into
the NodePort range) NodePorts. Upstream's sources become a pod on kind-worker that no Service
selects (a pod address), the endpoint pod itself (hairpin), the node kind-worker (its HOST-IP)
or the laptop (outside); its destinations the Service's ClusterIP, kind-worker's NodePort or the
LoadBalancer address the emulated cloud gave it.
Upstream's answer then reads: the pods that answer are the DNAT targets' pods (all of them, over
enough tries), masq means the pod sees another source than the sender's, REJECT is refused.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest
import yaml

from testbed.emu.cluster import EmulatedCluster
from testbed.experiment.expand import expand
from testbed.experiment.model import Endpoints, Expectation, PodSelection, ProbeGroup, ServiceTarget
from testbed.experiment.paced import PacedChanges
from testbed.experiment.run import probe_rows
from testbed.lifecycle.delays import Delays
from testbed.lifecycle.timers import Timers
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .conftest import ROOT

DATA = Path(ROOT) / "tests" / "upstream" / "kube_proxy_flows.yaml"
TEST_NODE, OTHER_NODE = "kind-worker", "kind-worker2"
REPEAT = 24  # three endpoints all answer in 24 tries but with probability 3 * (2/3)^24 < 1e-4

EXTERNAL_CLIENT = "203.0.113.2"  # upstream's testExternalClient: the laptop here


def packet_reason(env: dict, case: dict, flow: dict, mode: str) -> str:
    """Why a flow cannot run with real packets here ("" when it can)."""
    if mode not in flow.get("modes", case.get("modes", (mode,))):
        return "other mode"
    if not (flow.get(mode) or {}).get("output", flow.get("output", "")):
        return "untouched by kube-proxy (nothing to observe)"
    if case.get("config") or flow.get("needs"):
        return "needs " + ", ".join(flow.get("needs", ())) if flow.get("needs") else "needs kube-proxy-config"
    if case.get("family") == "IPv6":
        return "IPv6 (upstream's IPv6 fake node; these clusters are IPv4: the replay runs them)"
    src, dst = flow["source"], flow["destination"]
    internal = src in env["node_ips"] or ipaddress.ip_address(src) in ipaddress.ip_network(env["pod_cidr"])
    if not internal and src != EXTERNAL_CLIENT:
        return "a second outside client"
    proto = flow.get("protocol", "TCP")
    for svc in case["services"]:
        if dst == svc["clusterIP"]:
            if not any(p["port"] == flow["port"] and p.get("protocol", "TCP") == proto for p in svc["ports"]):
                return "a port the Service lacks (probes go to a Service's own ports)"
            return "" if internal else "the Service range advertised outside"
    if any(dst == svc["clusterIP"] for svc in case["services"]):
        return "" if internal else "the Service range advertised outside"
    if dst == env["node_ip"] and any(p.get("nodePort") == flow["port"] for s in case["services"] for p in s["ports"]):
        return ""
    for svc in case["services"]:
        if svc.get("loadBalancerIngress", [None])[0] == dst:
            if svc.get("loadBalancerSourceRanges"):
                return "LoadBalancer source ranges (they name upstream's addresses)"
            if not internal and svc.get("externalTrafficPolicy") == "Local":
                return "the outside to a Local LoadBalancer (the cloud picks the node; upstream asks test-node)"
            return ""
    return "a second LoadBalancer address or an external IP"


def condition(ep: dict) -> str:
    """How a pod must end up for its endpoint's conditions: "" (ready), serving-terminating, not-serving."""
    ready = ep.get("ready", True)
    if ready and not ep.get("terminating"):
        return ""
    if ep.get("terminating") and not ready:
        return "serving-terminating" if ep.get("serving", ready) else "not-serving"
    raise AssertionError(f"no way here to make an endpoint {ep}")


def _key(i: int, ns: str, name: str) -> str:
    return f"c{i}-{ns}-{name}"


def _pod(i: int, ip: str) -> str:
    return f"c{i}-ep-{ip.replace('.', '-')}"


def manifests_for(cases: list[tuple[int, dict]]) -> list[dict]:
    """The cases' Services and endpoint pods as manifests (one namespace; names carry the case)."""
    docs: list[dict] = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "client"},
            "spec": {"nodeName": TEST_NODE, "containers": [{"name": "c", "image": "busybox"}]},
        }
    ]
    pods: dict[str, dict] = {}
    for i, case in cases:
        for svc in case["services"]:
            key = _key(i, svc["namespace"], svc["name"])
            ports = []
            for p in svc["ports"]:
                sl = next(
                    (
                        sp
                        for s in case["slices"]
                        if s["service"] == svc["name"]
                        for sp in s["ports"]
                        if sp["name"] == p["name"] and sp.get("protocol", "TCP") == p.get("protocol", "TCP")
                    ),
                    None,
                )
                port = {"port": p["port"], "protocol": p.get("protocol", "TCP"), "targetPort": (sl or p)["port"]}
                if p["name"]:
                    port["name"] = p["name"]
                if p.get("nodePort"):
                    port["nodePort"] = 30000 + 20 * i + p["nodePort"] % 20
                ports.append(port)
            spec: dict = {"selector": {key: "yes"}, "ports": ports}
            if svc.get("type") in ("NodePort", "LoadBalancer"):
                spec["type"] = svc["type"]  # a LoadBalancer gets the emulated cloud's address
                spec["externalTrafficPolicy"] = svc.get("externalTrafficPolicy", "Cluster")
            if svc.get("internalTrafficPolicy"):
                spec["internalTrafficPolicy"] = svc["internalTrafficPolicy"]
            docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": key}, "spec": spec})
        for s in case["slices"]:
            key = _key(i, s["namespace"], s["service"])
            for ep in s["endpoints"]:
                pod = pods.setdefault(
                    _pod(i, ep["ip"]),
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {"name": _pod(i, ep["ip"]), "labels": {}},
                        "spec": {
                            "nodeName": TEST_NODE if ep.get("node") == "test-node" else OTHER_NODE,
                            "containers": [{"name": "server", "image": "echo", "ports": []}],
                        },
                    },
                )
                pod["metadata"]["labels"][key] = "yes"
                state = condition(ep)
                if state:
                    # kept terminating for the whole test: a long preStop sleep inside a long grace
                    # period; a readiness probe the test makes fail for the not-serving ones
                    pod["metadata"]["labels"]["upstream-replay-state"] = state
                    pod["spec"]["terminationGracePeriodSeconds"] = 3600
                    c0 = pod["spec"]["containers"][0]
                    c0["readinessProbe"] = {"tcpSocket": {"port": s["ports"][0]["port"]}, "periodSeconds": 1}
                    c0["lifecycle"] = {"preStop": {"sleep": {"seconds": 3000}}}
                declared = pod["spec"]["containers"][0]["ports"]
                for sp in s["ports"]:
                    cp = {"containerPort": sp["port"], "protocol": sp.get("protocol", "TCP")}
                    if cp not in declared:
                        declared.append(cp)
    return docs + list(pods.values())


def _source(env: dict, i: int, case: dict, ip: str) -> Endpoints:
    if ip in env["node_ips"]:
        return Endpoints(nodes=(TEST_NODE,))
    if any(ep["ip"] == ip for s in case["slices"] for ep in s["endpoints"]):
        return Endpoints(pods=PodSelection(names=(_pod(i, ip),)))
    if ipaddress.ip_address(ip) in ipaddress.ip_network(env["pod_cidr"]):
        return Endpoints(pods=PodSelection(names=("client",)))
    return Endpoints(hosts=("laptop",))


def _target(env: dict, i: int, case: dict, flow: dict) -> tuple[ServiceTarget, int]:
    dst, port = flow["destination"], flow["port"]
    for svc in case["services"]:
        key = _key(i, svc["namespace"], svc["name"])
        if dst == svc["clusterIP"]:
            return ServiceTarget(key), port
        if svc.get("loadBalancerIngress", [None])[0] == dst:
            return ServiceTarget(key, via="loadBalancer"), port
        if dst == env["node_ip"]:
            for p in svc["ports"]:
                if p.get("nodePort") == port:
                    return ServiceTarget(key, via="nodePort", nodes=(TEST_NODE,)), p["port"]
    raise AssertionError(f"no Service answers {dst}:{port} in {case['name']}")


def _conditioned(case: dict) -> bool:
    return any(condition(ep) for s in case["slices"] for ep in s["endpoints"])


def check_flow(c, env: dict, i: int, case: dict, flow: dict, mode: str, on_test_node: set[str]) -> str:
    """Send one upstream flow for real: "" when the answer is upstream's, else what differs."""
    flow_name, proto = flow["name"], flow.get("protocol", "TCP")
    over = flow.get(mode) or {}
    output = over.get("output", flow.get("output", ""))
    target, port = _target(env, i, case, flow)
    group = ProbeGroup(
        flow_name,
        _source(env, i, case, flow["source"]),
        Endpoints(service=target),
        ports=(port,),
        protocols=(proto,),
        repeat=1 if output in ("REJECT", "DROP") else REPEAT,
        timeout=0.7,
        expect=Expectation("any", "any"),
    )
    rows = probe_rows(c, "upstream", "s", expand(c.plan, group))
    assert rows, flow_name
    if output == "REJECT":
        got = {r["outcome"] for r in rows}
        ok = got == {"refused"}
    elif output == "DROP":
        got = {r["outcome"] for r in rows}
        ok = got == {"timeout"}
    else:
        want = {f"default/{_pod(i, x.strip().rsplit(':', 1)[0])}" for x in output.split(",")}
        answered = {r["answered_by"] for r in rows}
        # the node masqueraded towards another node's pod takes its own HOST-IP again:
        # masquerading is only visible when that pod is on the node itself (cni0's address)
        visible = [r for r in rows if group.source.nodes is None or r["answered_by"].split("/")[1] in on_test_node]
        masq = {r["seen_src_ip"] != r["src_ip"] for r in visible}
        got = (answered, masq)
        masq_ok = not visible or masq == {bool(over.get("masq", flow.get("masq", False)))}
        ok = {r["outcome"] for r in rows} == {"connected"} and answered == want and masq_ok
    return (
        "" if ok else f"{case['name']} / {flow_name} [{proto}]: upstream {output!r} masq={flow.get('masq')}, got {got}"
    )


@pytest.fixture(params=["three-nodes.yaml", "three-nodes-nftables.yaml"], ids=["iptables", "nftables"])
def replayed(request, no_leftovers, tmp_path):
    data = yaml.safe_load(DATA.read_text())
    mode = "nftables" if "nftables" in request.param else "iptables"
    env = data["environment"]
    runnable = [c for c in data["tests"] if any(not packet_reason(env, c, f, mode) for f in c["flows"])]
    cases = list(enumerate(runnable))
    path = tmp_path / "upstream.yaml"
    path.write_text(yaml.safe_dump_all(manifests_for(cases), sort_keys=False))
    spec = load_topology(os.path.join(ROOT, "topologies", request.param))
    manifests = load_manifests([str(path)])
    plan = plan_cluster(spec, manifests, seed=3)
    with EmulatedCluster(plan) as c:
        yield c, manifests, data, {case["name"]: (i, case) for i, case in cases}, plan.kube_proxy_mode


def test_upstream_flows_with_real_packets(replayed):
    c, manifests, data, cases, mode = replayed
    env = data["environment"]
    on_test_node = {p.name for p in c.plan.pods if p.node == TEST_NODE}
    failures, ran, reasons = [], 0, {}
    todo = []
    for case_data in data["tests"]:
        i, case = cases.get(case_data["name"], (-1, case_data))
        for flow in case["flows"]:
            why = packet_reason(env, case, flow, mode)
            if why:
                reasons[why] = reasons.get(why, 0) + 1
            else:
                todo.append((i, case, flow))
    # 1. the cases whose endpoints are all ready, as the cluster starts
    for i, case, flow in todo:
        if not _conditioned(case):
            failures.append(check_flow(c, env, i, case, flow, mode, on_test_node))
    # 2. the endpoints upstream has not ready: their pods' readiness fails (not serving) and
    # they are deleted, held terminating by a long preStop sleep; then those cases' flows
    driver = PacedChanges(c, manifests, Delays(timers=Timers(time_scale=0.05))).driver
    state = {p.full_name: p.labels.get("upstream-replay-state", "") for p in c.plan.pods}
    driver.set_probe([n for n, s in state.items() if s == "not-serving"], "readiness", False)
    driver.settle()
    driver.delete([n for n, s in state.items() if s])
    driver.run_for(5.0)
    eps = {
        e.pod: e
        for svc in c.plan.services.services
        for p in svc.ports
        for e in c.plan.services.endpoints(svc.namespace, svc.name, p.name, p.protocol)
    }
    for name, s in state.items():
        pod = name.split("/", 1)[1]
        if s and pod in eps:
            e = eps[pod]
            assert (e.ready, e.serving, e.terminating) == (False, s == "serving-terminating", True), (pod, e)
    for i, case, flow in todo:
        if _conditioned(case):
            failures.append(check_flow(c, env, i, case, flow, mode, on_test_node))
    ran = len(todo)
    failures = [f for f in failures if f]
    print(f"{mode}: {ran} upstream flows run with real packets; not here: {reasons}")
    assert not failures, "\n".join(failures)
    assert ran >= 50
