"""The one way emu/ runs programs: argv lists in, (rc, out, err) out.

Never a shell string: arguments are passed as a list, so a pod name can never be parsed
as shell syntax. Batches (`ip -batch -`, `iptables-restore`, `nft -f -`) go in on stdin,
one subprocess per node rather than one per rule or pod. A RecordingRunner lets unit tests
check the exact commands without root.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import KernelError
from ..netns import in_netns
from . import nftlib

IP_BATCH_LINES = 1000  # lines of one `ip -batch` process (each process has the 60 s timeout)
NETNS_DIR = "/run/netns"


def netns_argv(netns: str, argv: Sequence[str]) -> list[str]:
    """The command `Runner.run_in` runs, as one a user could type (in errors and recordings)."""
    return ["nsenter", f"--net={NETNS_DIR}/{netns}", *argv]


@dataclass(frozen=True)
class Result:
    rc: int
    out: str
    err: str


class Runner:
    """Runs argv lists; `check` raises KernelError on a non-zero exit."""

    def run(self, argv: Sequence[str], input: str | None = None, check: bool = True, timeout: float = 60.0) -> Result:
        try:
            proc = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False)
        except FileNotFoundError:
            raise KernelError(list(argv), 127, f"{argv[0]}: command not found") from None
        except subprocess.TimeoutExpired:
            raise KernelError(list(argv), -1, f"timed out after {timeout}s") from None
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if check and result.rc != 0:
            raise KernelError(list(argv), result.rc, result.err or result.out)
        return result

    def run_in(
        self, netns: str, argv: Sequence[str], input: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> Result:
        """`argv` inside the named network namespace, for programs that need nothing else of it
        (iptables-restore, conntrack): what `nsenter --net=...` does, without a process for it.

        The calling thread enters the namespace and starts the program there (a child starts in
        its parent thread's namespaces), then returns. `ip netns exec` also makes a mount
        namespace and remounts /sys, which costs more with every namespace of the machine: 25 ms
        of system time a call with 10,000 of them, as much as restoring a Service's 1,000 rules."""
        try:
            with in_netns(f"{NETNS_DIR}/{netns}"):
                return self.run(argv, input=input, check=check, timeout=timeout)
        except KernelError as exc:
            raise KernelError(netns_argv(netns, argv), exc.rc, exc.err) from None
        except OSError as exc:  # the namespace could not be entered
            raise KernelError(netns_argv(netns, argv), 1, str(exc)) from None

    def spawn(
        self, argv: Sequence[str], log: str, stdin_pipe: bool = False, stdout_pipe: bool = False
    ) -> subprocess.Popen:
        """Start a long-running program (see emu/daemon.py, the only caller): stderr, and stdout
        unless piped to us, append to `log`; in its own session, so a Ctrl-C reaches only us and
        we stop our helpers in order."""
        with open(log, "ab") as out:
            try:
                return subprocess.Popen(
                    list(argv),
                    stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                    stdout=subprocess.PIPE if stdout_pipe else out,
                    stderr=out,
                    text=True,
                    start_new_session=True,
                )
            except FileNotFoundError:
                raise KernelError(list(argv), 127, f"{argv[0]}: command not found") from None

    def restore_session(self, netns: str, argv: Sequence[str], log: str, name: str | None = None) -> RestoreLoader:
        """A persistent restore process in the namespace, fed one transaction after another
        (emu/restorer.py: kube-proxy's iptables-mode syncs without a process each)."""
        from .restorer import RestoreSession  # it imports this module

        return RestoreSession(netns, argv, log, name)

    def ip_batch(self, lines: Sequence[str], netns: str | None = None, check: bool = True) -> Result:
        """One `ip [-n NS] -batch -` for many commands; `-force` goes on past failures.

        At most IP_BATCH_LINES lines a process, in order: `netns add` of 10,000 pods is one
        batch otherwise, and on a busy VM it outlasted the 60 s timeout of a command (the first
        limit the scale curve hit at 9,900 pods on 50 nodes)."""
        argv = ["ip"] + (["-n", netns] if netns else []) + (["-batch", "-"] if check else ["-force", "-batch", "-"])
        return self._chunked(lambda text: self.run(argv, input=text, check=check), lines)

    def ip_batch_in(self, netns: str, lines: Sequence[str], check: bool = True) -> Result:
        """The same batch started inside the namespace by this thread (Runner.run_in), not by
        `ip -n`: `ip -n` also makes a mount namespace and remounts /sys for the batch, which
        costs more with every mount of the machine (about 1,000 namespace mounts at 1,000
        pods). For batches that need only netlink (links, addresses, routes)."""
        argv = ["ip", "-batch", "-"] if check else ["ip", "-force", "-batch", "-"]
        return self._chunked(lambda text: self.run_in(netns, argv, input=text, check=check), lines)

    @staticmethod
    def _chunked(run: Callable[[str], Result], lines: Sequence[str]) -> Result:
        """`run` on at most IP_BATCH_LINES lines at a time, in order; the outputs joined."""
        out, err, rc = [], [], 0
        for i in range(0, max(len(lines), 1), IP_BATCH_LINES):
            result = run("\n".join(lines[i : i + IP_BATCH_LINES]) + "\n")
            out.append(result.out)
            err.append(result.err)
            rc = rc or result.rc
        return Result(rc, "".join(out), "".join(err))

    def nft(self, netns: str, text: str) -> Result:
        """`nft -f -` of `text` in the named namespace: through libnftables in this thread when
        the library loads (emu/nftlib.py: no process per node), else the command."""
        argv = ["ip", "netns", "exec", netns, "nft", "-f", "-"]
        if not nftlib.available():
            return self.run(argv, input=text)
        try:
            nftlib.run_script(netns, text)
        except OSError as exc:  # NftError, or the namespace could not be entered
            raise KernelError(argv, 1, str(exc)) from None
        return Result(0, "", "")


class RestoreLoader(Protocol):
    """What Runner.restore_session hands back: `load(text)` commits one transaction or raises
    KernelError; `ahead(text)` writes its lines before the first COMMIT beforehand (nothing
    committed) and `abort()` drops them; `close()` ends the process."""

    def load(self, text: str) -> None: ...

    def ahead(self, text: str) -> None: ...

    def abort(self) -> None: ...

    def close(self) -> int | None: ...


@dataclass
class RecordedSession:
    """RecordingRunner's restore session: each load recorded as the command it feeds."""

    runner: RecordingRunner
    netns: str
    argv: tuple[str, ...]
    closed: bool = False
    begun: str = ""  # written ahead: recorded with the load that continues it, as one command

    def load(self, text: str) -> None:
        begun, self.begun = self.begun, ""
        if not text.startswith(begun):
            raise ValueError("load() of a text that does not continue what ahead() wrote")
        self.runner.run_in(self.netns, self.argv, input=text)

    def ahead(self, text: str) -> None:
        from .restorer import first_commit  # it imports this module

        self.begun = text[: max(0, first_commit(text))]

    def abort(self) -> None:
        self.begun = ""

    def close(self) -> int | None:
        self.closed = True
        return None


@dataclass
class RecordingRunner(Runner):
    """A fake for unit tests: records every call and answers from `answers` (default rc 0)."""

    calls: list[tuple[tuple[str, ...], str | None]] = field(default_factory=list)
    answers: dict[tuple[str, ...], Result] = field(default_factory=dict)

    def run(self, argv: Sequence[str], input: str | None = None, check: bool = True, timeout: float = 60.0) -> Result:
        key = tuple(argv)
        self.calls.append((key, input))
        result = self.answers.get(key, Result(0, "", ""))
        if check and result.rc != 0:
            raise KernelError(list(argv), result.rc, result.err)
        return result

    def nft(self, netns: str, text: str) -> Result:
        return self.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=text)

    def run_in(
        self, netns: str, argv: Sequence[str], input: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> Result:
        return self.run(netns_argv(netns, argv), input=input, check=check, timeout=timeout)

    def restore_session(self, netns: str, argv: Sequence[str], log: str, name: str | None = None) -> RestoreLoader:
        return RecordedSession(self, netns, tuple(argv))
