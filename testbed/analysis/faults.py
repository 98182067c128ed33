"""Faults against the probes sent during them: timelines, failure windows, detection, recovery (pure).

Input: the dataset's `during` rows (step `<name>:during`, one round of a group per timestamp)
and the fault events of run.json (emu/faults.py: inject, not-ready, evicted, withdrawn,
pod-gone, replaced, ready, recover; each with its UNIX time). Per fault, and per probe group
of the step it was injected in:

- failed: requests that did not get the expected outcome (`connected` unless the group says
  otherwise: a group expecting `any` counts as failed what did not connect);
- window: from the first failed round after the fault to the last one before its recovery
  (0 when a single round failed, None when none did);
- detect: from the fault to the control plane's first reaction (NotReady, routes withdrawn,
  the pod gone from the endpoints); None for faults nothing detects (loss, a stale kube-proxy);
- recover: from the fault to the first round, after the last failed one, in which every
  request succeeded; None when the step ended before that.

A recovery (the undo of a fault injected in an earlier step) gets the same figures, from the
recovery on: how long the failures outlast the repair (BGP sessions, ARP entries to relearn).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

DETECTION = ("not-ready", "withdrawn", "pod-gone")
DURING = ":during"


@dataclass(frozen=True)
class Round:
    time: float  # seconds since the step's first round
    ok: int
    total: int


@dataclass(frozen=True)
class GroupTimeline:
    step: str
    group: str
    start: float  # UNIX time of the first round
    rounds: tuple[Round, ...]
    events: tuple[tuple[float, str], ...]  # (seconds since start, "inject node-down on node x")


@dataclass(frozen=True)
class FaultFigures:
    step: str
    fault: str  # "node-down on node kind-worker2"
    group: str
    failed: int
    probes: int
    window: float | None
    detect: float | None
    recover: float | None


def _failed(rows: pd.DataFrame) -> pd.Series:
    """A row failed if it did not get its expected outcome, or, expecting `any`, did not connect."""
    expected_any = rows["expected_outcome"].astype(str) == "any"
    connected = rows["outcome"].astype(str) == "connected"
    ok = rows["outcome_ok"].astype(bool) & (~expected_any | connected)
    return ~ok


def _events(events: Sequence[Mapping[str, Any]], step: str) -> list[Mapping[str, Any]]:
    return sorted((e for e in events if e.get("step") == step), key=lambda e: float(e.get("time", 0.0)))


def timelines(frame: pd.DataFrame, events: Sequence[Mapping[str, Any]]) -> list[GroupTimeline]:
    """One timeline per during-step and probe group, with the step's fault events."""
    if frame.empty or "step" not in frame.columns:
        return []
    during = frame[frame["step"].astype(str).str.endswith(DURING)]
    out = []
    for (step_label, group), rows in during.groupby(["step", "group"], sort=False):
        step = str(step_label)[: -len(DURING)]
        marks = _events(events, step)
        if not marks:
            continue  # no fault in this step: the scaling/rollout report covers it
        failed = _failed(rows)
        per = (
            pd.DataFrame({"t": rows["timestamp"].astype(float), "failed": failed})
            .groupby("t", sort=True)["failed"]
            .agg(["sum", "count"])
        )
        start = float(per.index.min())
        rounds = tuple(Round(float(t) - start, int(c - s), int(c)) for t, (s, c) in zip(per.index, per.values))
        labels = tuple(
            (float(e["time"]) - start, f"{e['event']} {e['kind']} on {e['target']}") for e in marks if "time" in e
        )
        out.append(GroupTimeline(step, str(group), start, rounds, labels))
    return out


def fault_figures(timeline: GroupTimeline, events: Sequence[Mapping[str, Any]]) -> list[FaultFigures]:
    """Per fault injected in the timeline's step: failures, window, time to detect and to recover."""
    marks = _events(events, timeline.step)
    out = []
    for i, e in enumerate(marks):
        if e.get("event") not in ("inject", "recover"):
            continue
        t0 = float(e["time"])
        same = [x for x in marks[i + 1 :] if (x.get("kind"), x.get("target")) == (e.get("kind"), e.get("target"))]
        end = next((float(x["time"]) for x in same if x.get("event") == "recover"), float("inf"))
        nxt = next((float(x["time"]) for x in marks[i + 1 :] if x.get("event") in ("inject", "recover")), float("inf"))
        end = min(end, nxt)
        detect = next((float(x["time"]) - t0 for x in same if x.get("event") in DETECTION), None)
        # the last round sent before the fault counts too: its probes were in flight
        before = [timeline.start + r.time for r in timeline.rounds if timeline.start + r.time < t0]
        since = before[-1] if before else t0
        rounds = [r for r in timeline.rounds if since <= timeline.start + r.time < end]
        bad = [r for r in rounds if r.ok < r.total]
        window = recover = None
        if bad:
            first, last = timeline.start + bad[0].time, timeline.start + bad[-1].time
            window = last - first
            healed = [r for r in rounds if timeline.start + r.time > last and r.ok == r.total]
            recover = timeline.start + healed[0].time - t0 if healed else None
        out.append(
            FaultFigures(
                timeline.step,
                f"{e['kind']} on {e['target']}" + (" (recovered)" if e.get("event") == "recover" else ""),
                timeline.group,
                sum(r.total - r.ok for r in bad),
                sum(r.total for r in rounds),
                window,
                detect,
                recover,
            )
        )
    return out


def strip(timeline: GroupTimeline, width: int = 100) -> str:
    """The timeline as text: one character per round ('.' all succeeded, 'x' all failed, 'o' some
    failed), a digit where the n-th event of the step happened (1-9, then '+')."""
    if not timeline.rounds:
        return ""
    rounds = list(timeline.rounds)
    step = max(1, -(-len(rounds) // width))  # rounds per character, so the strip fits
    chars: list[str] = []
    pending = list(enumerate(timeline.events, 1))
    for k in range(0, len(rounds), step):
        chunk = rounds[k : k + step]
        while pending and pending[0][1][0] <= chunk[-1].time:
            n, _ = pending.pop(0)
            chars.append(str(n) if n < 10 else "+")
        ok, total = sum(r.ok for r in chunk), sum(r.total for r in chunk)
        chars.append("." if ok == total else "x" if ok == 0 else "o")
    chars += [str(n) if n < 10 else "+" for n, _ in pending]
    return "".join(chars)
