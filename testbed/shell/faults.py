"""The shell's fault commands (issue 16): inject a fault, recover from it, list them, set timers.

  fault KIND key=value...      e.g. fault loss node=kind-worker percent=20; fault node-down node=kind-worker2
  recover KIND key=value...    the same kind and target; `recover all` undoes every active fault
  fault list                   the active faults
  fault timers [timeScale=0.01 nodeMonitorGracePeriod=40 tolerationSeconds=300]

The faults are the experiments' (faults/model.py), applied by emu/faults.py through the Live
adapter; a node-down returns once Kubernetes' sequence played out with the timers, scaled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from ..faults.decode import TIMER_KEYS, parse_words
from ..faults.model import Fault, Recover, Timers, check_timers
from ..plan.model import Plan

USAGE = (
    "usage: fault KIND key=value... | fault list | fault timers [timeScale=F ...]; "
    "recover KIND key=value... | recover all"
)


class Shell(Protocol):
    """What these commands use of shell/core.py's ClusterShell."""

    fault_timers: Timers

    def act(self, action: Fault | Recover | None) -> list[str]:
        """Apply it through the Live adapter (None: list the active faults); lines to print."""


def _fault(shell: Shell, rest: str) -> int:
    words = rest.split()
    if words[:1] == ["list"]:
        for line in shell.act(None) or ["no active fault"]:
            print(line)
        return 0
    if words[:1] == ["timers"]:
        return _timers(shell, words[1:])
    fault, error = parse_words(words)
    if fault is None:
        print(f"error: {error}" if words else USAGE)
        return 1
    for line in shell.act(fault):
        print(line)
    return 0


def _recover(shell: Shell, rest: str) -> int:
    words = rest.split()
    if words == ["all"]:
        recover = Recover(None)
    else:
        fault, error = parse_words(words)
        if fault is None:
            print(f"error: {error}" if words else USAGE)
            return 1
        recover = Recover(fault)
    for line in shell.act(recover):
        print(line)
    return 0


def _timers(shell: Shell, words: list[str]) -> int:
    values: dict[str, float] = {}
    for word in words:
        key, eq, value = word.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not eq or key not in TIMER_KEYS or not 0 <= number <= 86400:
            print(f"error: expected key=seconds with key one of {', '.join(TIMER_KEYS)}, got {word[:40]!r}")
            return 1
        values[TIMER_KEYS[key]] = number
    timers = dataclasses.replace(shell.fault_timers, **values)
    bad = check_timers(timers)
    if bad:
        print(f"error: {bad[0][0]}: {bad[0][1]}")
        return 1
    shell.fault_timers = timers
    print(
        f"timers: nodeMonitorGracePeriod={timers.node_monitor_grace_period:g} s, "
        f"tolerationSeconds={timers.toleration_seconds:g} s, "
        f"timeScale={timers.time_scale:g}"
    )
    return 0


COMMANDS: dict[str, Callable[[Any, str], int]] = {"fault": _fault, "recover": _recover}
FaultCall = Callable[[Fault | Recover | None, Timers], tuple[Plan, Any, list[str]]]
