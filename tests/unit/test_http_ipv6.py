"""HTTP probes over IPv6 (issue 15): the URL and Host header (experiment/httpurl.py), probe groups
without a host, what the dataset records, and the HTTP client's socket family (traffic/http.py)."""

from __future__ import annotations

import pathlib
import socket
import threading

from testbed.experiment.expand import expand
from testbed.experiment.httpurl import authority, host_header, url
from testbed.experiment.load import load_experiment
from testbed.experiment.records import make_row
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests
from testbed.traffic.http import HttpProbe, request

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_the_url_brackets_an_ipv6_literal_and_leaves_out_the_default_port():
    assert authority("fd00:10:96::a", 80) == "[fd00:10:96::a]"
    assert authority("fd00:10:96::a", 8080) == "[fd00:10:96::a]:8080"
    assert authority("fd00:10:96::a", 443, "https") == "[fd00:10:96::a]"
    assert authority("10.96.0.10", 443) == "10.96.0.10:443"
    assert url("http", "fd00:10:244:1::4", 30080, "/x") == "http://[fd00:10:244:1::4]:30080/x"
    assert url("https", "web.default.svc.cluster.local", 443, "") == "https://web.default.svc.cluster.local/"
    # the group's own host wins; else the URL's authority, a DNS name kept as the name
    assert host_header("cafe.example.com", "fd00::1", 80, "http") == "cafe.example.com"
    assert host_header("", "fd00::1", 8080, "http") == "[fd00::1]:8080"
    assert HttpProbe("/x", "fd00::1", 80, "", name="echo.default.svc.cluster.local").host_header == (
        "echo.default.svc.cluster.local"
    )


def _groups(name: str):
    exp = load_experiment(str(REPO / "experiments" / name))
    plan = plan_cluster(load_topology(exp.topology), load_manifests(list(exp.manifests)), seed=exp.seed)
    return plan, {g.name: g for s in exp.steps for g in s.probes}


def test_http_groups_over_ipv6_expand_to_ipv6_urls_in_a_single_stack_cluster():
    plan, groups = _groups("ipv6-http.yaml")
    assert groups["pod-ip"].http is not None and groups["pod-ip"].http.host == ""  # host is optional now
    pods = expand(plan, groups["pod-ip"])
    assert pods and all(p.method == "http" and p.http_scheme == "http" and ":" in p.dst_ip for p in pods)
    assert all(p.expect_sources == (p.src.ip,) for p in pods)  # NAT-free checked, not an ingress
    row = make_row("r", "s", 0.0, pods[0], "connected", 1.0, None, None)
    assert row["http_request"] == f"http://[{pods[0].dst_ip}]:8080/" and row["family"] == "IPv6"
    (svc, *_) = expand(plan, groups["cluster-ip"])
    assert svc.communication == "pod-to-service (ClusterIP)" and svc.dst_ip.startswith("fd00:10:96::")
    (named, *_) = expand(plan, groups["dns-name"])
    assert named.dns_name == "echo.default.svc.cluster.local"
    assert make_row("r", "s", 0.0, named, "connected", 1.0, None, None)["http_request"] == (
        "http://echo.default.svc.cluster.local/"
    )


def test_http_groups_with_family_ipv6_take_the_ipv6_twins_in_a_dual_stack_cluster():
    plan, groups = _groups("dual-stack-http.yaml")
    v4, v6 = expand(plan, groups["cluster-ip-v4"]), expand(plan, groups["cluster-ip-v6"])
    assert ":" not in v4[0].dst_ip and ":" in v6[0].dst_ip and v6[0].method == "http"
    assert all(p.expect_sources and ":" in p.expect_sources[0] for p in v6)
    nodeport = expand(plan, groups["node-port-v6"])
    assert {p.dst_ip for p in nodeport} == {n.host_ip for n in plan.dual.nodes}


def test_the_client_speaks_http_over_an_ipv6_socket():
    """A real request on ::1 (an empty namespace path: this process's own, no root needed): the
    Host header is the bracketed authority."""
    server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    server.bind(("::1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    seen: list[bytes] = []

    def answer() -> None:
        conn, _ = server.accept()
        seen.append(conn.recv(4096))
        conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{"pod":"x"}')
        conn.close()

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        result = request(HttpProbe("", "::1", port, "", "/a", timeout=2.0))
    finally:
        thread.join(5)
        server.close()
    assert result.outcome == "connected" and result.reply == {"pod": "x"}
    assert seen and f"Host: [::1]:{port}\r\n".encode() in seen[0] and seen[0].startswith(b"GET /a HTTP/1.1")


def test_an_http_group_asks_the_tcp_ports_only():
    """web-hostport publishes TCP 8080 and UDP 5353: an `http:` group without ports requests the
    TCP one only, at the node's address; a pod target's UDP ports are left out the same way."""
    import dataclasses

    plan, groups = _groups("ipv6-http.yaml")
    web = groups["http-to-hostport"]
    every = expand(plan, dataclasses.replace(web, ports=()))
    assert every and {(p.protocol, p.port) for p in every} == {("TCP", 8080)}
    pods = expand(plan, dataclasses.replace(groups["pod-ip"], ports=()))
    assert pods and {p.protocol for p in pods} == {"TCP"} and {p.port for p in pods} == {8080}
