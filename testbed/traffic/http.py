"""HTTP(S) requests from any namespace, with a Host header and a path (ingress probes).

Where it sits: experiment probes with `http: {host, path}` go through here instead of the
socket prober: a real HTTP/1.1 request (TLS with SNI for https, the emulation's self-signed
certificates accepted), the status line, and the JSON body the agent behind the ingress sends
back (which pod answered, the source it saw). Requests run concurrently in a small thread
pool; each thread opens its socket inside the source namespace, of the family of the address
it connects to (IPv6: `http://[addr]:port/`, issue 15). Without a `host` the Host header is the
URL's authority (experiment/httpurl.py).
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..experiment.httpurl import host_header
from ..netns import in_netns


@dataclass(frozen=True)
class HttpProbe:
    src_netns: str
    ip: str
    port: int
    host: str
    path: str = "/"
    scheme: str = "http"
    timeout: float = 1.0
    name: str = ""  # the DNS name `ip` was resolved from (the URL's host when `host` is empty)

    @property
    def host_header(self) -> str:
        return host_header(self.host, self.name or self.ip, self.port, self.scheme)


@dataclass(frozen=True)
class HttpResult:
    outcome: str  # connected (2xx) | http-<status> | refused | timeout | unreachable | error
    status: int
    latency_ms: float | None
    reply: dict | None
    error: str = ""


def request(probe: HttpProbe) -> HttpResult:
    start = time.perf_counter()
    try:
        with in_netns(probe.src_netns):
            sock = socket.socket(socket.AF_INET6 if ":" in probe.ip else socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(probe.timeout)
        sock.connect((probe.ip, probe.port))
        if probe.scheme == "https":
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the emulation's certificates are self-signed
            sock = context.wrap_socket(sock, server_hostname=probe.host or probe.name or None)
        sock.sendall(
            f"GET {probe.path} HTTP/1.1\r\nHost: {probe.host_header}\r\nUser-Agent: testbed\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.close()
    except TimeoutError:
        return HttpResult("timeout", 0, None, None, "no answer")
    except ConnectionRefusedError:
        return HttpResult("refused", 0, None, None, "connection refused")
    except OSError as exc:
        return HttpResult("unreachable" if exc.errno in (101, 113) else "error", 0, None, None, str(exc))
    latency = (time.perf_counter() - start) * 1000
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return HttpResult("error", 0, latency, None, "not an HTTP response")
    try:
        reply = json.loads(body) if body else None
    except ValueError:
        reply = None
    outcome = "connected" if 200 <= status < 300 else f"http-{status}"
    return HttpResult(outcome, status, latency, reply if isinstance(reply, dict) else None)


def run_http(probes: Sequence[HttpProbe], workers: int = 16) -> list[HttpResult]:
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(probes)))) as pool:
        return list(pool.map(request, probes))
