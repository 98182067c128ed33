"""The cluster DNS (emu/dns.py) re-reads its hosts file only when a change changed its records:
a policy or a label change left dnsmasq's file as it was, yet every apply signalled both CoreDNS
pods' dnsmasq and waited for their reload. No process here: a stand-in records the signals."""

from __future__ import annotations

import signal

from testbed.emu.dns import DnsServer, hosts_text
from testbed.emu.ledger import Ledger


class _Daemon:
    def __init__(self) -> None:
        self.signals: list[int] = []

    def signal(self, sig: int, when: str = "") -> None:
        self.signals.append(sig)


def test_dnsmasq_is_reloaded_only_when_its_records_changed(tmp_path, monkeypatch):
    monkeypatch.setattr("testbed.emu.ledger.STATE_DIR", str(tmp_path))
    ledger = Ledger(tag="abcd", owner=1)
    (tmp_path / "abcd").mkdir()
    server = DnsServer(ledger, "tb-abcd-p0", key="p0")
    records = [("web.default.svc.cluster.local", "10.96.0.10"), ("db.default.svc.cluster.local", "10.96.0.11")]
    server._write(records)
    daemon = _Daemon()
    server.daemon = daemon  # type: ignore[assignment]  # running, as far as signal_update can tell
    assert server.signal_update(list(reversed(records))) is None  # the same records, in another order
    assert daemon.signals == []
    assert server.signal_update(records + [("new.default.svc.cluster.local", "10.96.0.12")]) is not None
    assert daemon.signals == [signal.SIGHUP]
    with open(server.hosts, encoding="ascii") as handle:
        assert handle.read() == hosts_text(records + [("new.default.svc.cluster.local", "10.96.0.12")])


def test_the_cluster_dns_signals_every_dnsmasq_before_awaiting_any(tmp_path, monkeypatch):
    """A scale changes the records of both CoreDNS pods: both re-read at once, and the pods'
    files are written meanwhile, instead of one reload after the other (issue 18)."""
    from testbed.emu.controllers import ClusterDns
    from testbed.plan.build import plan_cluster

    from ._services import world

    monkeypatch.setattr("testbed.emu.ledger.STATE_DIR", str(tmp_path))
    ledger = Ledger(tag="abcd", owner=1)
    (tmp_path / "abcd").mkdir()
    topology, manifests, _, _ = world()
    plan = plan_cluster(topology, manifests, 1)
    keys = sorted(p.key for p in plan.pods if p.served_by == "dnsmasq")
    assert len(keys) == 2
    events: list[str] = []
    dns = ClusterDns(ledger)
    for key in keys:
        server = dns.servers[key] = DnsServer(ledger, f"tb-abcd-{key}", key=key)
        server._write([("old.default.svc.cluster.local", "10.96.0.9")])
        server.cnames = tuple(sorted(plan.dns_records[1]))
        daemon = _Daemon()
        daemon.signal = lambda sig, when="", key=key: events.append(f"signal {key}")  # type: ignore[method-assign]
        server.daemon = daemon  # type: ignore[assignment]
        monkeypatch.setattr(server, "_reloaded", lambda offset, key=key: events.append(f"reloaded {key}"))
    monkeypatch.setattr(dns, "_pod_files", lambda desired: events.append("pod files"))
    dns.sync(plan)
    assert events == [
        f"signal {keys[0]}",
        f"signal {keys[1]}",
        "pod files",
        f"reloaded {keys[0]}",
        f"reloaded {keys[1]}",
    ]
    events.clear()
    dns.sync(plan)  # the same records: no signal, nothing awaited
    assert events == ["pod files"]
