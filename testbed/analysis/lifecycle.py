"""The race windows of a run's lifecycle timeline (pure; analysis/, issue 19).

For every pod that exited during a step: when it exited, and when each node's kube-proxy
stopped sending it new connections (the proxy-sync that took it out of the ready endpoints).
The race window is from the exit to the last node's such sync; none when every node had
stopped before the exit (what a preStop sleep longer than the propagation buys). Requests
sent in a window to the pod's share of endpoints fail: the report sets the windows beside the
failed probes of the step's `during` rounds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Window:
    step: str
    pod: str
    exited: float  # virtual seconds
    last_stop: float | None  # the last node's sync that stopped sending to it (None: never seen)
    wall_from: float
    wall_to: float

    @property
    def seconds(self) -> float:
        """How long some node still sent new connections to the exited pod (virtual s; 0: none)."""
        return max(0.0, self.last_stop - self.exited) if self.last_stop is not None else 0.0


def windows(timeline: Sequence[Mapping[str, Any]]) -> list[Window]:
    out = []
    for e in timeline:
        if e.get("event") != "exited":
            continue
        stops = [s for s in timeline if s.get("event") == "proxy-sync" and e["pod"] in (s.get("stopped") or ())]
        last = max(stops, key=lambda s: float(s["t"]), default=None)
        out.append(
            Window(
                str(e.get("step", "")),
                str(e["pod"]),
                float(e["t"]),
                float(last["t"]) if last is not None else None,
                float(e.get("wall", 0.0)),
                float(last.get("wall", 0.0)) if last is not None else float(e.get("wall", 0.0)),
            )
        )
    return out


def step_table(timeline: Sequence[Mapping[str, Any]], frame: pd.DataFrame) -> pd.DataFrame:
    """Per step: pods that exited, those with a race window, the longest window, and the step's
    `during` probes that failed, in all and inside a window."""
    rows = []
    found = windows(timeline)
    for step in dict.fromkeys(str(e.get("step", "")) for e in timeline):
        mine = [w for w in found if w.step == step]
        during = frame[frame["step"] == f"{step}:during"] if "step" in frame else frame.iloc[0:0]
        failed = during[during["outcome"] != "connected"] if len(during) else during
        open_windows = [w for w in mine if w.seconds > 0]
        inside = sum(
            any(w.wall_from - 0.15 <= float(ts) <= w.wall_to + 0.15 for w in open_windows)
            for ts in (failed["timestamp"] if len(failed) else ())
        )
        rows.append(
            {
                "step": step,
                "exited": len(mine),
                "windows": len(open_windows),
                "longest": max((w.seconds for w in mine), default=0.0),
                "probes": len(during),
                "failed": len(failed),
                "in_windows": int(inside),
            }
        )
    return pd.DataFrame(rows)
