"""Errors the testbed raises; cli.py turns them into one line each and an exit code.

Library code never calls exit(): it raises one of these. SpecError carries the file and
the field path so that a user sees exactly where bad input is (kind-style strict decode).
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Bounds on what an error line may echo back (issue 11: a 300 MB error line is no message).
_EXCERPT = reprlib.Repr()
_EXCERPT.maxstring, _EXCERPT.maxother, _EXCERPT.maxlist, _EXCERPT.maxdict, _EXCERPT.maxlevel = 60, 60, 4, 4, 2
_EXCERPT.maxlong = 40
LIMITS = {"file": 160, "document": 80, "path": 120, "message": 300}


def excerpt(value: Any) -> str:
    """repr() of a value the user gave, cut to a short excerpt (strings, lists, deep mappings)."""
    return _EXCERPT.repr(value)


def shorten(text: str, limit: int) -> str:
    """`text` with its middle elided when it is longer than `limit` characters."""
    if len(text) <= limit:
        return text
    keep = limit - 5
    return f"{text[: keep - keep // 3]} ... {text[len(text) - keep // 3 :]}"


class TestbedError(Exception):
    """Base class: a failure the user should see as one message, not a traceback."""

    __test__ = False  # not a pytest test class despite the name
    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One problem in the input: where (file, document, field path) and what."""

    file: str
    path: str
    message: str
    document: str = ""  # e.g. "Deployment default/web" — which object in a multi-doc file

    def __str__(self) -> str:
        # One bounded line whatever the input held: each part is cut to its limit.
        where = shorten(self.file, LIMITS["file"])
        if self.document:
            where += f" ({shorten(self.document, LIMITS['document'])})"
        if self.path:
            where += f": {shorten(self.path, LIMITS['path'])}"
        message = shorten(" ".join(self.message.split("\n")), LIMITS["message"])
        return f"{where}: {message}"


class SpecError(TestbedError):
    """Bad input: every problem found, validated all at once (exit code 2)."""

    exit_code = 2

    def __init__(self, problems: Iterable[Problem]):
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UnsupportedError(SpecError):
    """Input that is valid Kubernetes but that this kernel or this version cannot emulate."""


class UsageError(TestbedError):
    """A command-line argument out of its bounds, found before anything is created (exit code 2)."""

    exit_code = 2


class KernelError(TestbedError):
    """A kernel operation failed while building or tearing down (exit code 1)."""

    def __init__(self, argv: list[str] | tuple[str, ...], rc: int, err: str):
        self.argv, self.rc, self.err = tuple(argv), rc, err
        cmd = " ".join(self.argv)
        if len(cmd) > 160:
            cmd = cmd[:157] + "..."
        super().__init__(f"command failed (exit {rc}): {cmd}: {err.strip()}")


class NotRootError(TestbedError):
    """Building a cluster needs root (network namespaces, veth, bridges)."""

    exit_code = 2


class DaemonError(TestbedError):
    """A helper process (agent, dnsmasq, bird, nginx, tcpdump, iperf3) failed (exit code 1).

    `name` says which one ("the agent", "dnsmasq in kube-system/coredns-..."), `log` where its
    output is; `kept` rewrites the message once the log has been copied somewhere that
    outlives teardown (results/<run>/logs/), so the user is never sent to a deleted file.
    """

    def __init__(self, name: str, what: str, log: str = "", detail: str = ""):
        self.name, self.what, self.log, self.detail = name, what, log, detail
        super().__init__(self._text(f"see {log}" if log else ""))

    def _text(self, where: str) -> str:
        text = f"{self.name} {self.what}"
        if self.detail:
            text += f" ({self.detail})"
        return f"{text}: {where}" if where else text

    def kept(self, path: str) -> DaemonError:
        """The same failure, pointing at the copy of the log at `path`."""
        self.log = path
        self.args = (self._text(f"its log is kept in {path}"),)
        return self


class DaemonDied(DaemonError):
    """The process exited while the testbed still needed it (killed, crashed)."""

    def __init__(self, name: str, rc: int | None, log: str = "", detail: str = ""):
        self.rc = rc
        super().__init__(name, f"died (exit {rc})", log, detail)


class DaemonNotReady(DaemonError):
    """The process did not pass its readiness check in time."""


class CaptureError(TestbedError):
    """tcpdump could not capture where or what it was asked to (an unknown interface, a filter it rejects)."""


class RunAborted(TestbedError):
    """A run stopped before its end; its results folder holds what was measured, marked as such."""

    def __init__(self, message: str, run_dir: str = "", exit_code: int = 1):
        self.run_dir, self.exit_code = run_dir, exit_code
        super().__init__(message)
