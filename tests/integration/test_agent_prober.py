"""The agent and the prober against each other, with real packets between real namespaces.

Two "pods" (namespaces a and b, 10.250.0.2 and .3) hang off a Linux bridge in a third namespace;
every address lives inside namespaces this test creates, and teardown checks nothing is left.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from testbed.netns import in_netns
from testbed.traffic.prober import Probe, run_probes

pytestmark = [pytest.mark.integration, pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")]

PREFIX = f"tb-it{os.getpid()}-"
REPO = Path(__file__).resolve().parents[2]
A_IP, B_IP = "10.250.0.2", "10.250.0.3"


def ns_path(name: str) -> str:
    return f"/run/netns/{name}"


def sh(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True, capture_output=True)


def our_netns() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


def agent_pids(tag: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if tag.encode() in (entry / "cmdline").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


class AgentProc:
    """`python -m testbed.agent` as the launcher runs it: config file, tag, a pipe on stdin."""

    def __init__(self, tmp: Path, name: str, config: dict):
        self.tag = f"{PREFIX}{name}"
        self.config_path = tmp / f"{name}.json"
        self.err_path = tmp / f"{name}.err"
        self.write(config)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "testbed.agent", "--config", str(self.config_path), "--tag", self.tag],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.err_path.open("w"),
        )
        self._buf = b""

    def write(self, config: dict) -> None:
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config))
        tmp.rename(self.config_path)  # atomic, as a launcher should do

    def line(self, timeout: float = 10.0) -> str:
        fd, end = self.proc.stdout.fileno(), time.monotonic() + timeout
        while b"\n" not in self._buf:
            ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
            assert ready, f"agent said nothing within {timeout}s; stderr: {self.stderr()}"
            chunk = os.read(fd, 4096)
            assert chunk, f"agent exited (rc={self.proc.poll()}); stderr: {self.stderr()}"
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def ready(self) -> int:
        line = self.line()
        assert line.startswith("READY "), line
        return int(line.split()[1])

    def stderr(self) -> str:
        return self.err_path.read_text()

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()
        return self.proc.returncode


def pod(netns: str, name: str, ip: str, ports: list[tuple[str, int, str]]) -> dict:
    return {
        "netns": ns_path(netns),
        "pod": name,
        "namespace": "default",
        "node": "node-1",
        "ip": ip,
        "ports": [{"container": c, "name": "", "port": p, "protocol": proto} for c, p, proto in ports],
    }


WEB_PORTS = [
    ("nginx", 80, "TCP"),
    ("nginx", 53, "UDP"),
    ("side", 8080, "TCP"),
    ("side", 9000, "SCTP"),
    ("nginx", 8443, "TCP"),
    ("nginx", 5353, "UDP"),
    ("side", 9443, "SCTP"),
]  # the last three are blocked by nft in b


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    a, b, br = PREFIX + "a", PREFIX + "b", PREFIX + "br"
    made: list[str] = []
    agent = None
    try:
        for ns in (br, a, b):
            sh("ip", "netns", "add", ns)
            made.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", br, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", br, "link", "set", "br0", "up")
        for ns, addr, veth in ((a, A_IP, "va"), (b, B_IP, "vb")):
            sh("ip", "-n", br, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", br, "link", "set", veth, "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            # Without this the kernel rate-limits "port unreachable" to a few per second per
            # peer, and refused UDP probes beyond the first few would read as timeouts.
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.icmp_ratemask=0")
        sh(
            "ip",
            "netns",
            "exec",
            b,
            "nft",
            "-f",
            "-",
            stdin="""
            table inet tbit {
              chain input {
                type filter hook input priority 0; policy accept;
                tcp dport 8443 drop
                udp dport 5353 drop
                sctp dport 9443 drop
              }
            }""",
        )
        config = {
            "pods": [
                pod(b, "web-1", B_IP, WEB_PORTS),
                pod(a, "client-1", A_IP, [("app", 7000, "TCP")]),
                # errors that must be reported without stopping the agent:
                pod(PREFIX + "missing", "ghost-1", "10.250.0.9", [("c", 80, "TCP")]),
                pod(b, "twin-1", B_IP, [("c", 80, "TCP")]),  # same namespace, same port as web-1
            ]
        }
        agent = AgentProc(tmp_path_factory.mktemp("agent"), "agent", config)
        count = agent.ready()
        yield {"a": ns_path(a), "b": ns_path(b), "agent": agent, "ready": count, "config": config}
    finally:
        tag = agent.tag if agent else None
        rc = agent.stop() if agent else 0
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        assert rc == 0, f"agent exit code {rc} after SIGTERM"
        assert not our_netns(), f"namespaces left behind: {our_netns()}"
        if tag:
            assert not agent_pids(tag), "agent process left behind"


def probe(i: int, src: str, dst: str, port: int, proto: str, **kw) -> Probe:
    return Probe(i, src, dst, port, proto, **kw)


def test_ready_counts_sockets_and_errors_name_pod_and_port(cluster):
    # web-1: 5 TCP/UDP + client-1: 1, plus one raw SCTP socket per pod namespace (a and b)
    assert cluster["ready"] == 8
    err = cluster["agent"].stderr()
    assert "pod=default/ghost-1 port=80/TCP" in err
    assert "pod=default/twin-1 port=80/TCP" in err and "already served" in err


def test_connected_with_identity_and_peer_ip(cluster):
    a = cluster["a"]
    cases = [(80, "TCP", "nginx"), (53, "UDP", "nginx"), (8080, "TCP", "side"), (9000, "SCTP", "side")]
    results = run_probes([probe(i, a, B_IP, port, proto) for i, (port, proto, _) in enumerate(cases)])
    for (port, proto, container), r in zip(cases, results):
        assert r.outcome == "connected", r
        assert r.reply["pod"] == "web-1" and r.reply["container"] == container
        assert r.reply["protocol"] == proto and r.reply["port"] == port
        assert r.reply["peer_ip"] == A_IP and r.reply["local_ip"] == B_IP
        assert r.latency_ms is not None and r.latency_ms > 0


def test_undeclared_ports_refused(cluster):
    a, b = cluster["a"], cluster["b"]
    results = run_probes(
        [
            probe(1, a, B_IP, 81, "TCP"),
            probe(2, a, B_IP, 54, "UDP"),
            probe(3, a, B_IP, 9001, "SCTP"),
            probe(4, b, A_IP, 9000, "SCTP"),
        ]
    )  # a pod without any SCTP port
    assert [r.outcome for r in results] == ["refused"] * 4, results


def test_many_refusals_are_not_rate_limited(cluster):
    a = cluster["a"]
    probes = [probe(i, a, B_IP, 54, "UDP") for i in range(300)]
    probes += [probe(1000 + i, a, B_IP, 9001, "SCTP") for i in range(300)]
    assert Counter(r.outcome for r in run_probes(probes)) == {"refused": 600}


def test_blocked_flows_time_out_concurrently(cluster):
    a = cluster["a"]
    probes = [
        probe(i, a, B_IP, port, proto, timeout=0.5)
        for i in range(20)
        for port, proto in ((8443, "TCP"), (5353, "UDP"), (9443, "SCTP"))
    ]
    start = time.monotonic()
    results = run_probes(probes)
    elapsed = time.monotonic() - start
    assert {r.outcome for r in results} == {"timeout"}
    # 60 blocked flows of 0.5 s each: concurrent, they cost about one timeout, not 30 s.
    assert elapsed < 10, elapsed


def test_localhost_between_containers(cluster):
    b = cluster["b"]
    results = run_probes(
        [
            probe(1, b, "127.0.0.1", 8080, "TCP"),
            probe(2, b, "127.0.0.1", 53, "UDP"),
            probe(3, b, "127.0.0.1", 9000, "SCTP"),
        ]
    )
    assert [r.outcome for r in results] == ["connected"] * 3, results
    assert [r.reply["container"] for r in results] == ["side", "nginx", "side"]
    for r in results:
        assert r.reply["peer_ip"] == "127.0.0.1" and r.reply["local_ip"] == "127.0.0.1"
    # the pod's own IP, from inside the pod, is answered at that IP
    own = run_probes([probe(4, b, B_IP, 80, "TCP")])[0]
    assert own.reply["peer_ip"] == B_IP and own.reply["local_ip"] == B_IP


def test_source_address_binding(cluster):
    r = run_probes(
        [probe(1, cluster["a"], B_IP, 80, "TCP", src_ip=A_IP), probe(2, cluster["a"], B_IP, 9000, "SCTP", src_ip=A_IP)]
    )
    assert [x.reply["peer_ip"] for x in r] == [A_IP, A_IP]
    bad = run_probes([probe(3, cluster["a"], B_IP, 80, "TCP", src_ip="10.250.0.77")])[0]
    assert bad.outcome == "error" and "EADDRNOTAVAIL" in bad.error


def test_unreachable_and_invalid(cluster):
    results = run_probes(
        [
            probe(1, cluster["a"], "10.251.0.1", 80, "TCP"),
            probe(2, cluster["a"], "10.251.0.1", 53, "UDP"),
            probe(3, cluster["a"], "10.251.0.1", 9000, "SCTP"),
            probe(4, cluster["a"], "not-an-ip", 80, "TCP"),
            probe(5, "/run/netns/" + PREFIX + "nope", B_IP, 80, "TCP"),
        ]
    )
    assert [r.outcome for r in results] == ["unreachable"] * 3 + ["error"] * 2, results


def test_in_netns_always_returns_and_names_bad_paths(cluster):
    home = os.stat("/proc/thread-self/ns/net").st_ino
    with pytest.raises(ZeroDivisionError):
        with in_netns(cluster["a"]):
            assert os.stat("/proc/thread-self/ns/net").st_ino == os.stat(cluster["a"]).st_ino
            1 / 0  # noqa: B018 -- raises inside the namespace on purpose
    assert os.stat("/proc/thread-self/ns/net").st_ino == home
    missing = ns_path(PREFIX + "nope")
    with pytest.raises(OSError, match=missing):
        with in_netns(missing):
            pass
    assert os.stat("/proc/thread-self/ns/net").st_ino == home


def test_http_get_with_a_plain_socket(cluster):
    with in_netns(cluster["a"]):
        sock = socket.create_connection((B_IP, 80), timeout=5)
    with sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: web-1\r\nUser-Agent: test\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Type: application/json" in head
    reply = json.loads(body)
    assert reply["container"] == "nginx" and reply["peer_ip"] == A_IP


def test_tcp_clients_that_send_no_line_still_get_an_answer(cluster):
    with in_netns(cluster["a"]):
        half = socket.create_connection((B_IP, 80), timeout=5)
        silent = socket.create_connection((B_IP, 8080), timeout=5)
    with half, silent:
        half.shutdown(socket.SHUT_WR)  # like `nc -N`: EOF without a newline -> answer at once
        start = time.monotonic()
        assert json.loads(half.recv(65536))["container"] == "nginx"
        assert time.monotonic() - start < 1.5
        line = silent.makefile("rb").readline()  # nothing sent: answered at the 2 s bound
        assert json.loads(line)["container"] == "side"


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl")
def test_curl_from_a_pod_shell(cluster):
    a_name = Path(cluster["a"]).name
    out = subprocess.run(
        ["ip", "netns", "exec", a_name, "curl", "-sS", "--max-time", "5", f"http://{B_IP}:8080/"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["container"] == "side"


def test_many_tcp_probes_all_answered(cluster):
    n = 5000
    start = time.perf_counter()
    results = run_probes([probe(i, cluster["a"], B_IP, 80, "TCP") for i in range(n)])
    rate = n / (time.perf_counter() - start)
    print(f"\n{n} TCP probes: {rate:.0f} results/s")  # a figure, not an assertion
    assert Counter(r.outcome for r in results) == {"connected": n}
    assert [r.id for r in results] == list(range(n))  # input order
    assert {r.reply["peer_ip"] for r in results} == {A_IP}


def test_the_access_log_has_every_answered_probe_soon_after(cluster):
    """The agent writes its access-log lines once no event came for 5 ms (a burst's lines
    at most ACCESS_FLUSH_S late), one write per pod file: each probe's line is there."""
    log = Path(cluster["agent"].config_path).parent / "access" / "default_web-1.log"
    for n in (1, 2000):
        results = run_probes([probe(i, cluster["a"], B_IP, 80, "TCP") for i in range(n)])
        assert {r.outcome for r in results} == {"connected"}
        wanted = {f"TCP {A_IP}:{r.sport} -> {B_IP}:80 container=nginx" for r in results}
        end = time.monotonic() + 5
        while time.monotonic() < end:
            lines = log.read_text().splitlines() if log.exists() else []
            missing = wanted - {line.split(" ", 1)[-1] for line in lines}  # each line: time, then this
            if not missing:
                break
            time.sleep(0.05)
        assert not missing, sorted(missing)[:3]


def test_a_large_run_split_over_threads_keeps_order_and_sources(cluster):
    a, b = cluster["a"], cluster["b"]
    probes = [probe(i, a, B_IP, 80, "TCP") if i % 2 else probe(i, b, A_IP, 7000, "TCP") for i in range(3000)]
    results = run_probes(probes, workers=2)  # one thread per source namespace here
    assert [r.id for r in results] == list(range(3000))
    assert Counter(r.outcome for r in results) == {"connected": 3000}
    assert all(r.reply["peer_ip"] == (A_IP if i % 2 else B_IP) for i, r in enumerate(results))


def test_a_tcp_probe_answer_carries_the_fin_and_the_client_resets(cluster):
    """5 packets a probe, not 10 (issue 18): the agent's answer and FIN in one segment, one RST
    from the client instead of its FIN and the ACK back, the handshake's ACK on the request and
    the request's ACK on the answer (the agent's listener has quick ACKs off)."""
    a = cluster["a"]
    dump = subprocess.Popen(
        ["ip", "netns", "exec", Path(a).name, "tcpdump", "-i", "eth0", "-nn", "-l", "-c", "200", "tcp port 80"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        said = [dump.stderr.readline() for _ in range(2)]  # "verbose output suppressed", "listening on"
        assert "listening" in said[-1], said
        results = run_probes([probe(i, a, B_IP, 80, "TCP") for i in range(5)])
        assert {r.outcome for r in results} == {"connected"}
        time.sleep(0.3)
    finally:
        dump.send_signal(signal.SIGINT)
        out = dump.communicate(timeout=10)[0]
    flows: dict[str, list[tuple[bool, str, int]]] = {}
    for line in filter(None, out.splitlines()):  # "... IP 10.250.0.2.40000 > 10.250.0.3.80: Flags [S], ..., length 0"
        words = line.split()
        src, flags, length = (
            words[2],
            line.split("Flags [")[1].split("]")[0],
            int(line.rsplit("length ", 1)[1].split()[0].rstrip(":")),
        )
        client = not src.endswith(".80")
        flows.setdefault(src if client else words[4].rstrip(":"), []).append((client, flags, length))
    assert len(flows) == 5, out
    for packets in flows.values():
        assert not any(client and "F" in flags for client, flags, _ in packets), packets
        assert packets[-1][0] and "R" in packets[-1][1], packets
        assert any(not client and "F" in flags and length > 0 for client, flags, length in packets), packets
        assert len(packets) <= 7, packets  # 10 before; 6 when the handshake's ACK rides on the request
    # SYN, SYN-ACK, ACK + request, answer + FIN, RST: the agent's pure ACK of the request is gone
    # (it comes back only when the agent takes longer than the delayed-ACK timeout to answer)
    five = [(True, "S", False), (False, "S.", False), (True, "P.", True), (False, "F.", True), (True, "R.", False)]
    shapes = [[(c, f, n > 0) for c, f, n in packets] for packets in flows.values()]
    assert sum(shape == five for shape in shapes) >= 3, shapes


def test_sighup_reconciles_and_stdin_eof_stops(cluster, tmp_path):
    a = Path(cluster["a"]).name
    config = {"pods": [pod(a, "extra-1", A_IP, [("c", 7100, "TCP")])]}
    agent = AgentProc(tmp_path, "hup", config)
    try:
        assert agent.ready() == 2  # TCP 7100 + the raw socket of a
        b_probe = [probe(1, cluster["b"], A_IP, 7100, "TCP"), probe(2, cluster["b"], A_IP, 7101, "UDP")]
        assert [r.outcome for r in run_probes(b_probe)] == ["connected", "refused"]
        config["pods"][0]["ports"] = [{"container": "d", "name": "", "port": 7101, "protocol": "UDP"}]
        agent.write(config)
        agent.proc.send_signal(signal.SIGHUP)
        assert agent.ready() == 2
        after = run_probes(b_probe)
        assert [r.outcome for r in after] == ["refused", "connected"], after
        assert after[1].reply["container"] == "d"
        agent.proc.stdin.close()  # the launcher "dies"
        assert agent.proc.wait(5) == 0
    finally:
        agent.stop()
    assert not agent_pids(agent.tag)


def test_recreated_namespace_with_the_same_path_is_reopened(cluster, tmp_path):
    name = PREFIX + "c"  # a pod deleted and recreated under the same name
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "-n", name, "link", "set", "lo", "up")
        agent = AgentProc(tmp_path, "recreate", {"pods": [pod(name, "re-1", "127.0.0.1", [("c", 7200, "TCP")])]})
        try:
            assert agent.ready() == 2
            check = [probe(1, ns_path(name), "127.0.0.1", 7200, "TCP")]
            assert run_probes(check)[0].outcome == "connected"
            sh("ip", "netns", "del", name)
            sh("ip", "netns", "add", name)
            sh("ip", "-n", name, "link", "set", "lo", "up")
            assert run_probes(check)[0].outcome == "refused"  # our socket is in the old one
            agent.proc.send_signal(signal.SIGHUP)
            assert agent.ready() == 2
            assert run_probes(check)[0].outcome == "connected"
        finally:
            assert agent.stop() == 0
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_unusable_config_exits_with_code_2(tmp_path):
    agent = AgentProc(tmp_path, "badcfg", {"pods": [{"pod": "x"}]})
    try:
        assert agent.proc.wait(10) == 2
        assert "ERROR config" in agent.stderr() and "netns" in agent.stderr()
    finally:
        agent.stop()
