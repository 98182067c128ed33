"""Check a capture filter's syntax before anything is built (emu/, because it runs tcpdump).

`tcpdump -d -y EN10MB -- EXPR` compiles the filter for Ethernet and prints the BPF program:
no root, no interface, no packet. It runs in a new, empty network namespace (`unshare -rn`,
which needs no root either): a host name in a filter must not become a DNS query from the VM. The CLI calls this while loading an experiment, so that a
bad `capture.filter` is a one-line input error instead of a failure in the middle of a run.
"""

from __future__ import annotations

from ..errors import KernelError
from .runner import Runner


def bpf_filter_error(expression: str, runner: Runner | None = None) -> str | None:
    """tcpdump's reason when `expression` does not compile; None when it does or when tcpdump
    is not installed (the run itself then fails at its preflight, not here)."""
    if not expression.strip():
        return None
    argv = [
        "unshare",
        "-rn",
        "--",
        "tcpdump",
        "-d",
        "-y",
        "EN10MB",
        "--",
        *expression.split(),
    ]  # split as traffic/capture.py splits it
    try:
        result = (runner or Runner()).run(argv, check=False, timeout=10)
    except KernelError as exc:
        return None if exc.rc == 127 else f"tcpdump could not check it: {exc.err}"
    if (
        result.rc == 0
        or result.err.startswith("unshare:")
        or "tcpdump: not found" in result.err
        or "No such file" in result.err
    ):
        return None  # no user namespaces or no tcpdump here: nothing can be checked
    lines = [
        line for line in (result.err or result.out).splitlines() if line.strip() and not line.startswith("Warning")
    ]
    return (lines[-1] if lines else f"tcpdump exited with {result.rc}").removeprefix("tcpdump: ")
