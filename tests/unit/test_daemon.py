"""The Daemon contract (emu/daemon.py) with harmless real processes (python -c, sleep): no root.

Readiness (passes, times out, the process dies first), death detection with the exit code and
the log's last line, stop with its signal and grace period (SIGKILL after it), stop_all's one
grace period for many, and the /proc readers that readiness checks use.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

import pytest

from testbed.emu.daemon import Daemon, children, listening, stop_all
from testbed.emu.runner import Runner
from testbed.errors import DaemonDied, DaemonError, DaemonNotReady, KernelError, TestbedError

PY = sys.executable


def py(code: str, log: str, **kw) -> Daemon:
    return Daemon("the helper", [PY, "-c", code], log, **kw)


def test_ready_once_the_check_passes(tmp_path):
    flag = tmp_path / "flag"
    d = py(
        f"import time, pathlib; time.sleep(0.2); pathlib.Path({str(flag)!r}).touch(); time.sleep(30)",
        str(tmp_path / "h.log"),
        ready=lambda _d: flag.exists(),
        ready_timeout=10,
    )
    try:
        start = time.monotonic()
        pid = d.start(Runner())
        assert flag.exists() and time.monotonic() - start >= 0.2
        assert pid == d.pid and d.alive() and not d.died()
        d.check("now")  # alive: no error
    finally:
        assert d.stop() == -signal.SIGTERM
    assert not d.alive() and not d.died()  # we stopped it: not a death


def test_readiness_timeout_names_the_process_and_its_last_log_line(tmp_path):
    d = py(
        "import sys, time; print('still loading', file=sys.stderr, flush=True); time.sleep(30)",
        str(tmp_path / "h.log"),
        ready=lambda _d: False,
        ready_timeout=0.5,
    )
    try:
        with pytest.raises(DaemonNotReady) as err:
            d.start(Runner())
        msg = str(err.value)
        assert msg.startswith("the helper was not ready within 0.5 s")
        assert "last log line: still loading" in msg and str(tmp_path / "h.log") in msg
        assert isinstance(err.value, TestbedError) and "\n" not in msg
    finally:
        d.stop()


def test_exit_before_ready_is_a_death_with_its_exit_code(tmp_path):
    d = py(
        "import sys; print('bad config line 3', file=sys.stderr); sys.exit(3)",
        str(tmp_path / "h.log"),
        ready=lambda _d: False,
        ready_timeout=10,
    )
    start = time.monotonic()
    with pytest.raises(DaemonDied) as err:
        d.start(Runner())
    assert time.monotonic() - start < 5  # not the whole timeout
    assert err.value.rc == 3
    assert str(err.value).startswith("the helper died (exit 3) (before it was ready; last log line: bad config line 3)")


def test_a_killed_daemon_is_detected_and_reported_with_its_log(tmp_path):
    d = Daemon("the agent", ["sleep", "30"], str(tmp_path / "agent.log"))
    d.start(Runner())
    os.kill(d.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while d.alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert d.died() and d.returncode == -9
    with pytest.raises(DaemonDied, match=r"^the agent died \(exit -9\) \(during probes\): see .*agent\.log$"):
        d.check("during probes")
    with pytest.raises(DaemonDied):
        d.signal(signal.SIGHUP, "before a reload")  # a reload of a dead process says so
    err = DaemonDied("the agent", -9, d.log)
    assert (
        str(err.kept("results/r1/logs/agent.log"))
        == "the agent died (exit -9): its log is kept in results/r1/logs/agent.log"
    )
    assert d.stop() == -9  # stopping the dead one is fine, and reaps it


def test_stop_escalates_to_sigkill_after_the_grace_period(tmp_path):
    flag = tmp_path / "up"
    code = (
        f"import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(flag)!r}).touch(); time.sleep(30)"
    )
    d = py(code, str(tmp_path / "h.log"), ready=lambda _d: flag.exists(), grace=0.3)
    d.start(Runner())
    start = time.monotonic()
    assert d.stop() == -9  # ignored SIGTERM: killed after the grace period
    assert 0.3 <= time.monotonic() - start < 3
    assert d.stop() == -9  # twice is fine


def test_stop_uses_the_daemons_own_signal(tmp_path):
    flag = tmp_path / "up"
    code = (
        f"import signal, sys, time, pathlib; signal.signal(signal.SIGQUIT, lambda *a: sys.exit(7)); "
        f"pathlib.Path({str(flag)!r}).touch(); time.sleep(30)"
    )
    d = py(code, str(tmp_path / "h.log"), ready=lambda _d: flag.exists(), stop_signal=signal.SIGQUIT)
    d.start(Runner())
    assert d.stop() == 7  # graceful: its handler ran


def test_stop_all_waits_one_grace_period_not_one_each(tmp_path):
    daemons = []
    for i in range(3):
        flag = tmp_path / f"up{i}"
        code = (
            f"import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            f"pathlib.Path({str(flag)!r}).touch(); time.sleep(30)"
        )
        daemons.append(py(code, str(tmp_path / f"h{i}.log"), ready=lambda _d, f=flag: f.exists(), grace=1.0))
    for d in daemons:
        d.start(Runner())
    start = time.monotonic()
    stop_all(daemons)
    assert time.monotonic() - start < 2.5  # one after the other: 3 x 1 s
    assert [d.returncode for d in daemons] == [-9, -9, -9]


def test_pipes_and_log(tmp_path):
    d = py(
        "import sys; print('READY', flush=True); sys.stderr.write('to the log\\n'); sys.stdin.read()",
        str(tmp_path / "h.log"),
        stdin_pipe=True,
        stdout_pipe=True,
        ready=lambda dd: dd.proc.stdout.readline().startswith("READY"),
    )
    d.start(Runner())
    d.proc.stdin.close()  # EOF on stdin: it exits by itself, as the agent does when the testbed dies
    assert d.proc.wait(5) == 0
    assert d.log_tail() == "to the log"
    d.stop()


def test_argv_in_a_namespace_and_a_missing_program(tmp_path):
    assert Daemon("x", ["bird", "-f"], "l", netns="tb-abcd-n1").full_argv() == [
        "ip",
        "netns",
        "exec",
        "tb-abcd-n1",
        "bird",
        "-f",
    ]
    with pytest.raises(KernelError, match="command not found"):
        Daemon("x", ["/nonexistent/daemon"], str(tmp_path / "x.log")).start(Runner())
    assert issubclass(DaemonDied, DaemonError) and issubclass(DaemonNotReady, DaemonError)


def test_log_tail_is_bounded(tmp_path):
    log = tmp_path / "big.log"
    log.write_text("x" * 100_000 + "\nlast line\n")
    d = Daemon("x", ["true"], str(log))
    assert d.log_tail(1) == "last line"
    assert len(d.log_tail(5, limit=50)) == 50


def test_listening_reads_the_socket_table_of_a_process():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    assert not listening(os.getpid(), port)
    sock.listen()
    try:
        assert listening(os.getpid(), port)
    finally:
        sock.close()
    assert not listening(2**22 + 12345, port)  # no such process


def test_children_of_a_process(tmp_path):
    d = Daemon("x", ["sleep", "30"], str(tmp_path / "s.log"))
    d.start(Runner())
    try:
        assert d.pid in children(os.getpid())
        assert children(d.pid) == set()
    finally:
        d.stop()
