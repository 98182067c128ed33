"""The agent's per-pod access log: one line per connection, bounded in size."""

from __future__ import annotations

import os

import pytest

from testbed.agent import accesslog
from testbed.agent.accesslog import AccessLog
from testbed.wire.reply import PortIdentity

WHO = PortIdentity("web-1", "default", "kind-worker", "nginx", "TCP", 80)


@pytest.mark.parametrize("max_open", [0, 4])
def test_lines_name_the_source_as_seen_and_the_file_stays_bounded(tmp_path, monkeypatch, max_open):
    monkeypatch.setattr(accesslog, "MAX_BYTES", 1000)
    log = AccessLog(str(tmp_path / "access"))
    log.max_open = max_open  # the rotation closes a kept file: the new lines go to the new one
    log.record(WHO, "192.168.1.3", 40123, "10.244.1.2")
    path = log.path("default", "web-1")
    line = open(path).read()
    assert line.endswith(" TCP 192.168.1.3:40123 -> 10.244.1.2:80 container=nginx\n")
    for i in range(200):
        log.record(WHO, "10.244.2.9", 1000 + i, "10.244.1.2")
    assert os.path.getsize(path) <= 1000 + len(line) + 10 and os.path.exists(path + ".1")
    assert os.path.getsize(path + ".1") <= 1000 + len(line) + 10
    assert "10.244.2.9:1199 " in open(path).read()  # the newest line is kept


def test_an_unwritable_folder_never_stops_the_agent(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    log = AccessLog(str(blocker / "access"))  # a folder under a file: every write fails
    log.record(WHO, "10.0.0.1", 1, "10.0.0.2")
    log.record(WHO, "10.0.0.1", 2, "10.0.0.2")
    assert log.ok is False


def test_kept_files_are_bounded_and_closed(tmp_path):
    log = AccessLog(str(tmp_path / "access"))
    log.max_open = 2
    pods = [PortIdentity(f"web-{i}", "default", "kind-worker", "nginx", "TCP", 80) for i in range(3)]
    for round_ in range(2):
        for who in pods:
            log.add(who, "10.0.0.1", round_, "10.0.0.2")
        log.flush()
        assert len(log.fds) == 2  # the least recently written closed
    for who in pods:
        assert len(open(log.path("default", who.pod)).read().splitlines()) == 2
    kept = list(log.fds.values())
    log.add(pods[0], "10.0.0.1", 9, "10.0.0.2")
    log.close()  # writes what is queued, closes what is kept
    assert log.fds == {} and open(log.path("default", "web-0")).read().count("\n") == 3
    for fd in kept:
        with pytest.raises(OSError):
            os.fstat(fd)
