"""SIGINT, SIGTERM and SIGHUP: the first one stops the work, none ever stops a teardown (emu/).

`install()` (the CLI, at start) routes the three signals here. The first signal outside a
teardown raises KeyboardInterrupt, so every `finally` (teardown) runs. From then on, and
whenever a teardown or another critical section runs, a signal is only noted (one line on
stderr) and never obeyed: an exception raised in the middle of a teardown would abort it and
leave namespaces behind. A signal noted during a teardown that was not itself caused by one
is raised once the teardown ends, so the program still stops as asked.

Only the main thread receives signals (Python's rule); without `install()` (a library user,
the tests) the shield still holds SIGINT/SIGTERM/SIGHUP back during teardown.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NOTED = b"testbed: teardown in progress, signal noted\n"
NOTED_CRITICAL = b"testbed: signal noted; it takes effect in a moment\n"


class _State:
    installed = False
    interrupted = False      # a signal already raised KeyboardInterrupt: the work is stopping
    depth = 0                # critical sections (teardowns) running
    pending: int | None = None   # a signal noted in a critical section, not yet acted on
    note = NOTED


_state = _State()


def _handler(signum: int, _frame: object) -> None:
    if _state.depth or _state.interrupted:
        if _state.depth and not _state.interrupted:
            _state.pending = signum
        os.write(2, _state.note)  # async-signal-safe enough: no buffered stream in a half state
        return
    _state.interrupted = True
    raise KeyboardInterrupt(f"signal {signum}")


def install() -> dict:
    """Route SIGINT, SIGTERM and SIGHUP through the handler (main thread only); returns the
    handlers it replaced, for `uninstall`."""
    previous = {sig: signal.signal(sig, _handler) for sig in SIGNALS}
    _state.installed, _state.interrupted = True, False
    return previous


def uninstall(previous: dict, exiting: bool = False) -> None:
    """Put `previous` back, or ignore the signals if the process is about to exit."""
    for sig, old in previous.items():
        signal.signal(sig, signal.SIG_IGN if exiting else old)
    _state.installed, _state.interrupted = False, False


def resume() -> None:
    """The KeyboardInterrupt was handled and the work goes on (the shell's Ctrl-C of a
    command): the next signal stops the work again."""
    _state.interrupted = False


@contextmanager
def shielded(note: bytes = NOTED) -> Iterator[None]:
    """Run the block to its end whatever signals arrive; act on a noted one afterwards."""
    main = threading.current_thread() is threading.main_thread()
    previous = {}
    if main and not _state.installed:  # a library user: shield the teardown all the same
        previous = {sig: signal.signal(sig, _handler) for sig in SIGNALS}
        _state.interrupted = False  # its own handlers (not ours) raised whatever is in flight
    _state.depth += 1
    outer, _state.note = _state.note, note
    try:
        yield
    finally:
        _state.depth -= 1
        _state.note = outer
        pending = _state.pending if _state.depth == 0 else None
        if _state.depth == 0:
            _state.pending = None
        for sig, old in previous.items():
            signal.signal(sig, old)
        if pending is not None and not _state.interrupted:
            _state.interrupted = _state.installed
            raise KeyboardInterrupt(f"signal {pending}")
