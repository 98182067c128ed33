"""The ingress controller: a real nginx (Debian's) in the ingress-nginx controller pod (emu/).

What ingress-nginx does, with the configuration the Plan holds (plan.ingress: testbed/ingress/'s
model of the Ingress objects and the current endpoints, and the certificates to make): nginx runs in the controller pod's network namespace on
ports 80 and 443, proxying to the backends' pod IPs; on every change the text is rendered
again and, when it differs, nginx reloads (SIGHUP: new workers, no dropped listener). TLS
uses self-signed certificates made with openssl for each secretName. Everything lives in the
instance's ledger folder; the process is in the ledger so teardown and `clean` stop it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping

from ..ingress import openssl_argv
from ..plan.model import Plan
from .daemon import Daemon, children, listening
from .ledger import Ledger, netns_name
from .runner import Runner


def _listening_on_80(daemon: Daemon) -> bool:
    """Ready when it accepts connections (its pid file can appear before its listeners)."""
    return daemon.pid is not None and listening(daemon.pid, 80)


class IngressController:
    phase = "controllers"

    def __init__(self, runner: Runner, ledger: Ledger) -> None:
        self.runner, self.ledger = runner, ledger
        self.dir = os.path.join(ledger.dir, "ingress")
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.daemon: Daemon | None = None
        self.pod_key = ""
        self.text = ""
        self.certs: set[str] = set()
        self.reloads = 0

    def _certificates(self, certificates: Mapping[str, tuple[str, ...]]) -> None:
        for secret, hosts in certificates.items():
            if secret in self.certs:
                continue
            crt, key = (os.path.join(self.dir, f"{secret}.{ext}") for ext in ("crt", "key"))
            self.runner.run(openssl_argv(hosts, crt, key))
            self.certs.add(secret)

    def sync(self, desired: Plan) -> None:
        pod = next((p for p in desired.pods if p.served_by == "nginx"), None)
        if pod is None or desired.ingress is None:
            self.stop()
            return
        os.makedirs(self.dir, exist_ok=True)
        self._certificates(desired.ingress.certificates)
        text = desired.ingress.nginx_conf(self.dir)
        if self.daemon is not None and pod.key != self.pod_key:
            self.stop()  # the controller pod was replaced
        if text != self.text or self.daemon is None:
            tmp = self.conf + ".tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, self.conf)
            self.text = text
            self._test()
            if self.daemon is None:
                self._start(netns_name(self.ledger.tag, pod.key), f"{pod.namespace}/{pod.name}")
                self.pod_key = pod.key
            else:
                self._reload(self.daemon)

    def _test(self) -> None:
        """`nginx -t`: a configuration nginx would refuse fails here, with nginx's own words."""
        self.runner.run(["nginx", "-t", "-q", "-c", self.conf, "-p", self.dir + "/"])

    def _start(self, netns: str, pod: str) -> None:
        daemon = Daemon(
            f"nginx in {pod}",
            ["nginx", "-c", self.conf, "-p", self.dir + "/", "-g", "daemon off;"],
            os.path.join(self.dir, "nginx.stderr"),
            netns=netns,
            ready=_listening_on_80,
            extra_logs=(os.path.join(self.dir, "error.log"),),
            stop_signal=signal.SIGQUIT,
        )  # SIGQUIT: nginx's graceful shutdown
        self.daemon = daemon
        self.ledger.add_pid(daemon.start(self.runner))

    def _reload(self, daemon: Daemon) -> None:
        """SIGHUP: the master re-reads the configuration and forks new workers, which take the
        listeners over while the old ones finish their requests. The reload has happened once a
        worker that did not exist before the signal is there (a configuration nginx rejects
        keeps the old workers: the check times out with nginx's error as the last log line)."""
        assert daemon.pid is not None
        before = children(daemon.pid)
        daemon.signal(signal.SIGHUP, "before a reload")
        self.reloads += 1
        daemon.wait_ready(check=lambda d: bool(children(d.pid or 0) - before))

    def daemons(self) -> list[Daemon]:
        return [self.daemon] if self.daemon is not None else []

    def stop(self) -> None:
        if self.daemon is None:
            return
        daemon, self.daemon = self.daemon, None
        daemon.stop()
        self.text = ""
