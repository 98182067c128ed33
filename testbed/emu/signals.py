"""SIGINT, SIGTERM and SIGHUP: the first one stops the work, none ever stops a teardown (emu/).

`install()` (the CLI, at start) routes the three signals here. The first signal outside a
teardown raises KeyboardInterrupt, so every `finally` (teardown) runs. From then on, and
whenever a teardown or another critical section runs, a signal is only noted (one line on
stderr, printed once) and never obeyed: an exception raised in the middle of a teardown would abort it and
leave namespaces behind. A signal noted during a teardown that was not itself caused by one
is raised once the teardown ends, so the program still stops as asked.

Python runs handlers in the main thread only; without `install()` (a library user, the
tests) the shield still holds SIGINT/SIGTERM/SIGHUP back during teardown. During a shielded
block the main thread also blocks the three signals, so that the programs a teardown runs
inherit the block and a terminal's Ctrl-C (sent to the whole process group) cannot kill them.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NOTED = b"testbed: teardown in progress, signal noted\n"
NOTED_CRITICAL = b"testbed: signal noted; it takes effect in a moment\n"


class _State:
    installed = False
    interrupted = False  # a signal already raised KeyboardInterrupt: the work is stopping
    depth = 0  # critical sections (teardowns) running
    pending: int | None = None  # a signal noted in a critical section, not yet acted on
    note = NOTED
    told: set[bytes] = set()  # each note is printed once, however many signals follow


_state = _State()


def _handler(signum: int, _frame: object) -> None:
    if _state.depth or _state.interrupted:
        if _state.depth and not _state.interrupted:
            _state.pending = signum
        if _state.note not in _state.told:
            _state.told.add(_state.note)
            os.write(2, _state.note)  # not print(): no buffered stream left in a half state
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
    """Put `previous` back, or, if the process is about to exit with its own code, block and
    ignore the signals (Python gives their default action back at exit; a late Ctrl-C would
    turn an exit 130 or 0 into "killed by SIGINT")."""
    if exiting:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    for sig, old in previous.items():
        signal.signal(sig, signal.SIG_IGN if exiting else old)
    _state.installed, _state.interrupted = False, False


class _Sink(threading.Thread):
    """While the main thread blocks the signals, the kernel delivers them here, and Python
    runs the handler (which only notes them) in the main thread between two statements."""

    def __init__(self) -> None:
        super().__init__(name="signal-sink", daemon=True)
        self.done = threading.Event()

    def run(self) -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        self.done.wait()

    def stop(self) -> None:
        self.done.set()
        self.join()


def resume() -> None:
    """The KeyboardInterrupt was handled and the work goes on (the shell's Ctrl-C of a
    command): the next signal stops the work again."""
    _state.interrupted = False
    _state.told.clear()


@contextmanager
def shielded(note: bytes = NOTED) -> Iterator[None]:
    """Run the block to its end whatever signals arrive; act on a noted one afterwards."""
    main = threading.current_thread() is threading.main_thread()
    previous = {}
    if main and not _state.installed:  # a library user: shield the teardown all the same
        previous = {sig: signal.signal(sig, _handler) for sig in SIGNALS}
        _state.interrupted = False  # its own handlers (not ours) raised whatever is in flight
    # The main thread blocks the signals for the whole block, so that every child it starts
    # (`ip netns del`, iptables, Mininet's commands) inherits the block: a Ctrl-C sent to the
    # terminal's process group, or a signal that lands while Python forks a child, then kills
    # no part of the teardown. The sink thread still lets the handler note each signal.
    sink, mask = None, None
    if main and _state.depth == 0:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        sink = _Sink()
        sink.start()
    _state.depth += 1
    outer, _state.note = _state.note, note
    try:
        yield
    finally:
        if sink is not None and mask is not None:
            sink.stop()
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # anything still pending is noted now
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
