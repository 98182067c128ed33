"""A persistent `iptables-restore --noflush -v` per node: kube-proxy's loads without a process each (emu/).

Every iptables-mode sync of a node was one `iptables-restore` process: its start (exec, the
dynamic loader, the xtables extensions it loads for `statistic`, `comment`, `DNAT`...) cost
about 6 ms of a scale's ~30 ms of CPU per node, and on a busy VM the wait for a new process to
be scheduled more (issue 18: 29 ms of CPU and 53 ms of wall time a load by a process each,
23 ms and 23 ms through one process fed load after load, at load average 12). A session keeps
one process per node namespace and feeds it one transaction after another on its stdin:

- iptables-restore reads its input a line at a time and commits each table at its COMMIT; with
  `-v` it echoes every comment line when it reaches it, so a `# testbed-ack N` line written after
  a sync's text comes back on stdout only once every table of that text was committed;
- a line that fails ends the process (its error on stderr, kept in the session's log): its
  transaction is not committed, and the caller falls back to a full restore by a process of its
  own (emu/controllers.py KubeProxy), as upstream kube-proxy's sync after a failed one is full;
- it exits by itself at the end of its input: when the session is closed, and when the process
  that feeds it dies in any way (the kernel closes the pipe), so it cannot outlive its instance.
  It runs in a session of its own (a Ctrl-C reaches only the testbed, which closes it in order),
  inside the node's namespace (the final sweep kills whatever still runs there), and its argv[0]
  is a path in the instance's folder, so `ps` and the tests' leftover checks say whose it is
  (the multi-call binary dispatches on argv[0]'s base name).

A transaction may also be written in two steps (`ahead`, then `load`): iptables-restore parses
each line as it comes and touches the kernel only at a table's COMMIT (the chains it names are
fetched then too), so the lines before the first COMMIT can be fed while the caller still waits
for something that must come first (kube-proxy's sync: the agent serving the new pods), and only
the rest, with its commit, afterwards: about 40 % of a scale's CPU per node (10 of 25 ms: the
parsing, and iptables-nft's sorted list of the chains named) is then done before the commit
point (issue 18). `abort` kills a process holding such a beginning: nothing of it was committed.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence

from ..errors import KernelError
from ..netns import in_netns
from .runner import NETNS_DIR, netns_argv

ACK = "# testbed-ack "
TIMEOUT = 60.0  # seconds for one transaction, as Runner.run gives a command


class Exited(OSError):
    """The restore process closed its output: it exited (a line failed, or it was killed)."""


class RestoreSession:
    """One persistent restore process in namespace `netns`, started at the first load.

    `argv` is the program and its flags (`-v` is needed: the acks are its echo); `name`, when
    given, becomes argv[0] (a path whose base name is the program's), the program itself being
    found by `argv[0]` on PATH. An empty `netns` runs it in this thread's namespace (unit tests)."""

    def __init__(self, netns: str, argv: Sequence[str], log: str, name: str | None = None) -> None:
        self.netns, self.argv, self.log, self.name = netns, list(argv), log, name
        self.proc: subprocess.Popen | None = None
        self.sent = 0  # transactions written
        self.begun = ""  # the beginning of the next transaction, written ahead (`ahead`)
        self._buffer = b""
        self._lock = threading.Lock()  # one transaction at a time

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def _start(self) -> subprocess.Popen:
        program = shutil.which(self.argv[0])
        if program is None:
            raise KernelError(netns_argv(self.netns, self.argv), 127, f"{self.argv[0]}: command not found")
        os.makedirs(os.path.dirname(self.log) or ".", exist_ok=True)
        with open(self.log, "ab") as err:
            try:
                with in_netns(f"{NETNS_DIR}/{self.netns}" if self.netns else ""):  # a child starts in its thread's
                    proc = subprocess.Popen(
                        [self.name or self.argv[0], *self.argv[1:]],
                        executable=program,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=err,
                        bufsize=0,
                        start_new_session=True,
                    )
            except OSError as exc:  # the namespace could not be entered, or the program started
                raise KernelError(netns_argv(self.netns, self.argv), 1, str(exc)) from None
        self._buffer = b""
        return proc

    def ahead(self, text: str) -> None:
        """Write the part of `text` before its first COMMIT line now (nothing is committed); the
        next `load(text)` writes the rest and returns once committed. KernelError if the process
        is gone or the write failed: the session is closed then, and `load` starts anew."""
        with self._lock:
            if self.begun:
                raise ValueError("a transaction was already begun")
            cut = first_commit(text)
            if cut <= 0:
                return
            proc = self._running()
            assert proc.stdin is not None
            try:
                _write(proc, text[:cut].encode())
            except (OSError, ValueError) as exc:  # a broken pipe: it died
                self.close()
                raise KernelError(netns_argv(self.netns, self.argv), self._code(exc), self._why(exc)) from None
            self.begun = text[:cut]

    def _running(self) -> subprocess.Popen:
        """The live process (started if none); KernelError if it died since its last load: that
        load was committed, but whoever ended it may have done more; the caller makes this sync
        a full one, and the next load starts a new process."""
        if self.proc is not None and self.proc.poll() is not None:
            # (or a line written ahead failed: its error is the log's last line)
            rc = self.proc.returncode
            died = Exited(f"exited with {rc} since its last load")
            self.close()
            raise KernelError(netns_argv(self.netns, self.argv), rc if rc > 0 else 1, self._why(died))
        if self.proc is None:
            self.proc = self._start()
        return self.proc

    def load(self, text: str, timeout: float = TIMEOUT) -> None:
        """Feed one transaction (whole tables, each ending in COMMIT) and return once committed.
        KernelError if the process refused it or died: the session is closed then (the next
        load starts a new process), and what the kernel holds is whatever was committed before."""
        with self._lock:
            begun, self.begun = self.begun, ""
            if begun and not text.startswith(begun):
                self.close()  # never commit a beginning with another text's end
                raise ValueError("load() of a text that does not continue what ahead() wrote")
            proc = self._running()
            assert proc.stdin is not None and proc.stdout is not None
            self.sent += 1
            ack = f"{ACK}{self.sent}"
            rest = text[len(begun) :]
            try:
                _write(proc, (rest if rest.endswith("\n") else rest + "\n").encode() + f"{ack}\n".encode())
                self._await(proc, ack.encode(), timeout)
            except (OSError, TimeoutError, ValueError) as exc:  # a broken pipe: it died; closed under us
                self.close()
                raise KernelError(netns_argv(self.netns, self.argv), self._code(exc), self._why(exc)) from None

    def abort(self) -> None:
        """Drop a transaction begun with `ahead`: the process is killed before its COMMIT (the
        kernel keeps what the last load committed); the next load starts a new process."""
        with self._lock:
            if self.begun:
                self.begun = ""
                if self.proc is not None:
                    self.proc.kill()
                self.close()

    def _await(self, proc: subprocess.Popen, ack: bytes, timeout: float) -> None:
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = proc.stdout.fileno()
        while True:
            lines = self._buffer.split(b"\n")
            self._buffer = lines.pop()
            if any(line.strip() == ack for line in lines):
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer within {timeout:g} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise Exited("it exited")
                self._buffer += chunk

    def _code(self, exc: Exception) -> int:
        rc = self.proc.returncode if self.proc is not None else None
        return rc if rc not in (None, 0) else 1

    def _why(self, exc: Exception) -> str:
        """The process's last lines of stderr (its error), else what went wrong on our side."""
        try:
            with open(self.log, "rb") as handle:
                handle.seek(max(0, os.path.getsize(self.log) - 2048))
                tail = handle.read().decode("utf-8", errors="replace").strip().splitlines()[-3:]
        except OSError:
            tail = []
        return " | ".join(tail) or str(exc) or type(exc).__name__

    def close(self, grace: float = 2.0) -> int | None:
        """End of input (it exits by itself), then SIGKILL after `grace` seconds; reaps it and
        closes our pipes. Returns its exit code (None if never started). Safe to call twice."""
        proc, self.proc = self.proc, None
        self.begun = ""
        if proc is None:
            return None
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:  # a broken pipe to a dead process
                pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=grace)
        return proc.returncode


def first_commit(text: str) -> int:
    """Where the first line `COMMIT` of a restore text starts (-1 if none)."""
    at = 0
    while True:
        at = text.find("COMMIT", at)
        if at < 0:
            return -1
        end = at + 6
        if (at == 0 or text[at - 1] == "\n") and text[end : end + 1] in ("", "\n", " ", "\t", "\r"):
            return at
        at = end


def _write(proc: subprocess.Popen, data: bytes) -> None:
    """All of `data` into the process's stdin (a raw pipe may take part of it: a signal during the write)."""
    assert proc.stdin is not None
    view = memoryview(data)
    while view:
        view = view[proc.stdin.write(view) or 0 :]
