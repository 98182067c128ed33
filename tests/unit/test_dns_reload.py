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
    server.daemon = daemon  # type: ignore[assignment]  # running, as far as update can tell
    server.update(list(reversed(records)))  # the same records, in another order
    assert daemon.signals == []
    server.update(records + [("new.default.svc.cluster.local", "10.96.0.12")])
    assert daemon.signals == [signal.SIGHUP]
    with open(server.hosts, encoding="ascii") as handle:
        assert handle.read() == hosts_text(records + [("new.default.svc.cluster.local", "10.96.0.12")])
