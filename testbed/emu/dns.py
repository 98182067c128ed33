"""Cluster DNS: a real dnsmasq in the kube-dns pod's namespace, and each pod's resolv.conf.

Part of emu/. The records (A records of Services and headless endpoints, CNAMEs of
ExternalName Services) are computed by the pure core; here they are written to a hosts file
that dnsmasq re-reads on SIGHUP, so Service changes reach DNS without a restart (CNAME
changes restart it: dnsmasq reads --cname only at start). dnsmasq has no upstream
(--no-resolv): names outside cluster.local get NXDOMAIN, and no query ever leaves the
emulation. Pods see /etc/netns/<netns>/resolv.conf, which `ip netns exec` binds over
/etc/resolv.conf, with Kubernetes' search path (<ns>.svc.cluster.local svc.cluster.local
cluster.local, ndots:5), so `wget nginx` in a pod's shell resolves as in scenario 003
(written by emu/podfiles.py as the kubelet would, dnsPolicy and dnsConfig applied).
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Sequence

from .daemon import Daemon
from .ledger import Ledger
from .runner import Runner

ETC_NETNS = "/etc/netns"


def remove_one(path: str, targets: bool = True) -> None:
    """Remove /etc/netns/<netns>: a folder, or a symlink to a folder on the instance's tmpfs
    (emu/podfs.py), whose target goes too unless not `targets` (the tmpfs is unmounted next)."""
    if os.path.islink(path):
        target = os.readlink(path)
        os.unlink(path)
        if targets:
            shutil.rmtree(target, ignore_errors=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def remove_resolv_confs(netns_names: Sequence[str], targets: bool = True) -> None:
    for netns in netns_names:
        remove_one(os.path.join(ETC_NETNS, netns), targets)


def hosts_text(a_records: Sequence[tuple[str, str]]) -> str:
    """/etc/hosts format; several lines for one name give several A records (headless)."""
    return "".join(f"{ip} {name}\n" for name, ip in sorted(set(a_records), key=lambda r: (r[0], r[1])))


class DnsServer:
    """dnsmasq serving cluster.local from a hosts file, inside one pod's network namespace."""

    def __init__(
        self,
        ledger: Ledger,
        netns: str,
        domain: str = "cluster.local",
        key: str = "dns",
        runner: Runner | None = None,
        pod: str = "",
    ) -> None:
        self.ledger, self.netns, self.domain = ledger, netns, domain
        self.runner = runner or Runner()
        self.hosts = os.path.join(ledger.dir, f"dns-hosts-{key}")
        self.pidfile = os.path.join(ledger.dir, f"dnsmasq-{key}.pid")
        self.log = os.path.join(ledger.dir, f"dnsmasq-{key}.log")
        self.name = f"dnsmasq in {pod}" if pod else "dnsmasq"
        self.daemon: Daemon | None = None
        self.cnames: tuple[tuple[str, str], ...] = ()
        self.written = ""  # the hosts file's text as last written
        # a single-stack IPv6 cluster (plan/ipv6.py): the pod's IPv6 address, listened on (with
        # --bind-interfaces, dnsmasq answers nothing arriving on a wildcard "::")
        self.ipv6 = ""

    def _write(self, a_records: Sequence[tuple[str, str]], text: str | None = None) -> None:
        text = hosts_text(a_records) if text is None else text
        tmp = self.hosts + ".tmp"
        with open(tmp, "w", encoding="ascii") as handle:
            handle.write(text)
        os.replace(tmp, self.hosts)
        self.written = text

    def argv(self) -> list[str]:
        """dnsmasq's command line (the Daemon runs it in the pod's namespace)."""
        argv = [
            "dnsmasq",
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            f"--addn-hosts={self.hosts}",
            f"--pid-file={self.pidfile}",
            "--user=root",
            "--group=root",
            "--bind-interfaces",
            f"--listen-address={self.ipv6}" if self.ipv6 else "--listen-address=0.0.0.0",
            "--port=53",
            "--log-facility=-",
            f"--local=/{self.domain}/",
            "--domain-needed",
            "--bogus-priv",
            "--cache-size=0",
        ]
        argv += [f"--cname={alias},{target}" for alias, target in self.cnames]
        return argv

    def start(self, a_records: Sequence[tuple[str, str]], cnames: Sequence[tuple[str, str]] = ()) -> None:
        self._write(a_records)
        self.cnames = tuple(sorted(cnames))
        # Ready once it has written its pid file: by then it has bound port 53.
        self.daemon = Daemon(
            self.name,
            self.argv(),
            self.log,
            netns=self.netns,
            ready=lambda _d: os.path.exists(self.pidfile),
            ready_timeout=5.0,
        )
        self.ledger.add_pid(self.daemon.start(self.runner))

    def signal_update(self, a_records: Sequence[tuple[str, str]], cnames: Sequence[tuple[str, str]] = ()) -> int | None:
        """New records: written and dnsmasq signalled, without waiting; returns the log offset
        that `reloaded` waits from (None: nothing to wait for). The cluster's servers are
        signalled first and awaited after, so they re-read at once (ClusterDns.sync)."""
        if tuple(sorted(cnames)) != self.cnames:
            self.stop()
            self.start(a_records, cnames)
            return None
        text = hosts_text(a_records)
        if self.daemon is not None and text == self.written:
            return None  # the same records (a policy or label change): nothing for dnsmasq to re-read
        self._write(a_records, text)
        if self.daemon is None:
            return None
        offset = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        self.daemon.signal(signal.SIGHUP, "before a reload")  # dnsmasq re-reads --addn-hosts files
        return offset

    def reloaded(self, offset: int | None) -> None:
        """Wait for the re-read a `signal_update` asked for (nothing if None)."""
        if offset is not None:
            self._reloaded(offset)

    def _reloaded(self, offset: int, timeout: float = 2.0) -> None:
        """Wait for dnsmasq's `read <hosts file>` line after `offset` in its log: it re-reads the
        file after the signal, asynchronously, and a query sent before that (a probe right after a
        change: a recreated StatefulSet pod's name) would get the old address. Bounded: after
        `timeout` the change goes on, as a slow CoreDNS reload would let it."""
        needle = f"read {self.hosts} ".encode()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(self.log, "rb") as handle:
                    handle.seek(offset)
                    if needle in handle.read():
                        return
            except FileNotFoundError:
                return  # no log to watch (it was removed with the instance's folder)
            time.sleep(0.002)

    def stop(self) -> None:
        if self.daemon is None:
            return
        self.daemon.stop()
        try:
            os.unlink(self.pidfile)
        except FileNotFoundError:
            pass
