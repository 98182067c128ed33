"""The ingress controller: a real nginx (Debian's) in the ingress-nginx controller pod (emu/).

What ingress-nginx does, with the configuration rendered by testbed/ingress/ from the Ingress
objects and the current endpoints: nginx runs in the controller pod's network namespace on
ports 80 and 443, proxying to the backends' pod IPs; on every change the text is rendered
again and, when it differs, nginx reloads (SIGHUP: new workers, no dropped listener). TLS
uses self-signed certificates made with openssl for each secretName. Everything lives in the
instance's ledger folder; the process is in the ledger so teardown and `clean` stop it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

from ..plan.model import Plan
from .ledger import Ledger, netns_name
from .runner import Runner, stop_processes


def _listening(netns_path: str, port: int) -> bool:
    import socket

    from ..traffic.netns import in_netns

    with in_netns(netns_path):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0
    finally:
        sock.close()


class IngressController:
    def __init__(self, runner: Runner, ledger: Ledger) -> None:
        self.runner, self.ledger = runner, ledger
        self.dir = os.path.join(ledger.dir, "ingress")
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.proc: subprocess.Popen | None = None
        self.pod_key = ""
        self.text = ""
        self.certs: set[str] = set()
        self.reloads = 0

    def _certificates(self, items: Any) -> None:
        from ..ingress import certificates_needed, openssl_argv

        for secret, hosts in certificates_needed(items).items():
            if secret in self.certs:
                continue
            crt, key = (os.path.join(self.dir, f"{secret}.{ext}") for ext in ("crt", "key"))
            self.runner.run(openssl_argv(hosts, crt, key))
            self.certs.add(secret)

    def sync(self, plan: Plan, manifests: Any) -> None:
        from ..ingress import render_nginx_conf

        pod = next((p for p in plan.pods if p.served_by == "nginx"), None)
        if pod is None or manifests is None:
            self.stop()
            return
        os.makedirs(self.dir, exist_ok=True)
        self._certificates(manifests.ingresses)
        text = render_nginx_conf(manifests.ingresses, plan.services,
                                 cert_path=os.path.join(self.dir, "{secret}.crt"),
                                 key_path=os.path.join(self.dir, "{secret}.key"),
                                 pid_path=os.path.join(self.dir, "nginx.pid"), prefix_dir=self.dir)
        if self.proc is not None and pod.key != self.pod_key:
            self.stop()  # the controller pod was replaced
        if text != self.text or self.proc is None:
            tmp = self.conf + ".tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, self.conf)
            self.text = text
            if self.proc is None:
                self._start(netns_name(self.ledger.tag, pod.key))
                self.pod_key = pod.key
            else:
                self.proc.send_signal(signal.SIGHUP)  # nginx: re-read the configuration gracefully
                self.reloads += 1
                time.sleep(0.1)  # new workers take the listeners over

    def _start(self, netns: str) -> None:
        self.runner.run(["nginx", "-t", "-q", "-c", self.conf, "-p", self.dir + "/"])
        log = open(os.path.join(self.dir, "nginx.stderr"), "ab")
        with log:
            self.proc = subprocess.Popen(["ip", "netns", "exec", netns, "nginx", "-c", self.conf, "-p", self.dir + "/",
                                          "-g", "daemon off;"], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        self.ledger.add_pid(self.proc.pid)
        # Ready when it accepts connections (its pid file can appear before its listeners).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}; see {log.name}")
            if _listening(f"/run/netns/{netns}", 80):
                return
            time.sleep(0.02)
        raise RuntimeError(f"nginx did not listen on port 80 within 10 s; see {log.name}")

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        stop_processes([proc], signal.SIGQUIT)  # nginx: graceful shutdown
        self.text = ""
