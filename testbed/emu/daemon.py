"""The Daemon contract: how every helper process of the testbed is started, watched and stopped.

Part of emu/. The agent, bird, dnsmasq, nginx, tcpdump and iperf3 are all Daemons: an argv,
the network namespace it runs in (`ip netns exec`, which execs the program, so the pid we
hold is the daemon's own), a readiness check polled after start and after a reload, a stop
signal with a grace period before SIGKILL, and a log file that takes its stderr (and its
stdout, unless the daemon speaks to us on a pipe). It is started through the one runner
(Runner.spawn), so no module of the testbed calls Popen on its own.

A Daemon knows whether it is alive, so a process that dies under the testbed (killed, crashed)
is reported as that — DaemonDied naming the process, its exit code and its log — rather than
as the network failing the probes sent to it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import DaemonDied, DaemonNotReady
from .runner import Runner

# A readiness check returns True when the daemon serves; it may raise DaemonError itself.
Check = Callable[["Daemon"], bool]


@dataclass
class Daemon:
    name: str  # for messages: "the agent", "bird on kind-worker", ...
    argv: Sequence[str]  # the program, without the `ip netns exec` prefix
    log: str  # file that takes stderr (and stdout unless piped)
    netns: str | None = None  # network namespace name (/run/netns/<netns>), None: this one
    ready: Check | None = None  # None: ready once started
    ready_timeout: float = 10.0
    stop_signal: int = signal.SIGTERM
    grace: float = 3.0  # seconds between the stop signal and SIGKILL
    extra_logs: tuple[str, ...] = ()  # files it writes itself (nginx's error.log), kept with its log
    stdin_pipe: bool = False  # keep a pipe on stdin (the agent exits on EOF: it never outlives us)
    stdout_pipe: bool = False  # read stdout ourselves (the agent's READY lines)
    proc: subprocess.Popen | None = field(default=None, repr=False)
    stopping: bool = field(default=False, repr=False)  # stop() called: an exit is expected from now on
    _signalled: bool = field(default=False, repr=False)  # the stop signal was sent

    # -- life -----------------------------------------------------------------------------
    def full_argv(self) -> list[str]:
        return (["ip", "netns", "exec", self.netns] if self.netns else []) + list(self.argv)

    def start(self, runner: Runner, wait: bool = True) -> int:
        """Spawn it and wait until its readiness check passes (unless not `wait`: the caller
        calls wait_ready later); returns its pid."""
        os.makedirs(os.path.dirname(self.log) or ".", exist_ok=True)
        self.stopping = self._signalled = False
        self.proc = runner.spawn(self.full_argv(), self.log, stdin_pipe=self.stdin_pipe, stdout_pipe=self.stdout_pipe)
        if wait:
            self.wait_ready()
        return self.proc.pid

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit code once it has exited (negative: killed by that signal), else None."""
        return self.proc.poll() if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def died(self) -> bool:
        """Started, not asked to stop, and gone: the testbed did not end it."""
        return self.proc is not None and not self.stopping and self.proc.poll() is not None

    def check(self, when: str = "") -> None:
        """Raise DaemonDied if it died under us; `when` says what we were doing, for the message."""
        if self.died():
            raise DaemonDied(self.name, self.returncode, self.log, when)

    def wait_ready(self, timeout: float | None = None, check: Check | None = None) -> None:
        """Poll the readiness check (or `check`, e.g. one proper to a reload) until it passes;
        DaemonDied if the process exits first, DaemonNotReady (with the last line of its log)
        if the time runs out."""
        timeout = self.ready_timeout if timeout is None else timeout
        ready = check or self.ready
        deadline = time.monotonic() + timeout
        while True:
            if self.died():
                tail = self.log_tail(1)
                raise DaemonDied(
                    self.name,
                    self.returncode,
                    self.log,
                    f"before it was ready; last log line: {tail}" if tail else "before it was ready",
                )
            if ready is None or ready(self):
                return
            if time.monotonic() > deadline:
                tail = self.log_tail(1)
                raise DaemonNotReady(
                    self.name, f"was not ready within {timeout:g} s", self.log, f"last log line: {tail}" if tail else ""
                )
            time.sleep(0.01)

    def signal(self, sig: int, when: str = "") -> None:
        """Send a signal (e.g. SIGHUP: reload); DaemonDied if it is no longer there to get it."""
        self.check(when)
        assert self.proc is not None, f"{self.name} was never started"
        self.proc.send_signal(sig)

    def stop(self, deadline: float | None = None) -> int | None:
        """The stop signal, `grace` seconds (or until the monotonic `deadline`), then SIGKILL;
        always reaps it and closes our pipes. Returns its exit code (None if it was never
        started). Safe to call twice."""
        if self.proc is None:
            return None
        self.stopping = True
        proc = self.proc
        if proc.poll() is None:
            self._send_stop()
            wait = self.grace if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=self.grace)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:  # a broken pipe to a dead agent
                    pass
        return proc.returncode

    def _send_stop(self) -> None:
        self.stopping = True
        if self.proc is not None and not self._signalled and self.proc.poll() is None:
            self._signalled = True
            try:
                self.proc.send_signal(self.stop_signal)
            except ProcessLookupError:
                pass

    # -- what it said ---------------------------------------------------------------------
    def log_tail(self, lines: int = 20, limit: int = 300) -> str:
        """The last `lines` lines of its log, joined by " | ", at most `limit` characters."""
        try:
            with open(self.log, "rb") as handle:
                handle.seek(max(0, os.path.getsize(self.log) - 8192))
                text = handle.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        tail = " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())
        return tail if len(tail) <= limit else "..." + tail[-limit + 3 :]


def stop_all(daemons: Sequence[Daemon]) -> None:
    """Stop several at once: every stop signal first, then the waits (one grace period, not N)."""
    for d in daemons:
        d._send_stop()
    deadline = time.monotonic() + max((d.grace for d in daemons), default=0.0)
    for d in daemons:
        d.stop(deadline)


def listening(pid: int, port: int, protocol: str = "tcp") -> bool:
    """Whether a socket listens on `port` in the network namespace of process `pid`.

    Reads /proc/<pid>/net/tcp (tcp6: IPv6 sockets; the table of that process's namespace): no connection is made,
    which matters for iperf3 -s -1, whose one test a probe connection would use up, and no
    namespace is entered.
    """
    try:
        with open(f"/proc/{pid}/net/{protocol}", encoding="ascii") as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                local, state = fields[1], fields[3]
                if int(local.rsplit(":", 1)[1], 16) == port and (protocol not in ("tcp", "tcp6") or state == "0A"):
                    return True
    except (OSError, StopIteration, IndexError, ValueError):
        return False
    return False


def children(pid: int) -> set[int]:
    """The pids of a process's children (nginx's workers), from /proc; empty if it is gone."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return {int(p) for p in handle.read().split()}
    except (OSError, ValueError):
        return set()
