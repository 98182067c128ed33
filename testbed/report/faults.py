"""The report's fault section: events, per-fault figures and a timeline per probe group (pure).

Reads analysis/faults.py's timelines and figures; draws one figure per step with faults (each
probe group's share of failed requests per round, every fault event a numbered vertical line),
and gives the same timeline as text for the Markdown report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from ..analysis import faults
from .document import Block, Figure, Heading, Paragraph, Table
from .figures import fault_timeline


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def fault_blocks(frame: pd.DataFrame, meta: Mapping[str, Any], take: Callable[[str], str]) -> list[Block]:
    """Nothing when the run injected no fault."""
    events = [e for e in meta.get("events") or () if isinstance(e, Mapping)]
    if not events:
        return []
    t_run = min(float(e.get("time", 0.0)) for e in events)
    blocks: list[Block] = [
        Heading(2, "Faults", "faults"),
        Paragraph(
            "Every fault event with its time since the first one: injections, the control plane's "
            "reactions (NotReady, endpoints removed, eviction and replacement, BGP routes withdrawn) "
            "and recoveries."
        ),
        Table(
            ("t", "step", "event", "fault", "target", "detail"),
            [
                (
                    f"{float(e.get('time', 0.0)) - t_run:.2f} s",
                    str(e.get("step", "")),
                    str(e.get("event", "")),
                    str(e.get("kind", "")),
                    str(e.get("target", "")),
                    str(e.get("detail", ""))[:200],
                )
                for e in sorted(events, key=lambda e: float(e.get("time", 0.0)))
            ],
            (True, False, False, False, False, False),
        ),
    ]
    lines = faults.timelines(frame, events)
    if not lines:
        return blocks
    figures = [f for line in lines for f in faults.fault_figures(line, events)]
    blocks += [
        Heading(3, "Failed requests per fault", "faults-figures"),
        Paragraph(
            "Per fault and probe group sent during it: failed requests (not the expected outcome, or "
            "not connected where any outcome was accepted), the window from the first to the last "
            "failed round, the time from the fault to the control plane's detection, and to the first "
            "round after the last failure in which every request succeeded."
        ),
        Table(
            ("step", "fault", "probe group", "failed", "window", "detect", "recover"),
            [
                (f.step, f.fault, f.group, f"{f.failed}/{f.probes}", _s(f.window), _s(f.detect), _s(f.recover))
                for f in figures
            ],
            (False, False, False, True, True, True, True),
        ),
        Heading(3, "Timelines", "faults-timelines"),
        Paragraph(
            "One character per round of probes ('.' all succeeded, 'o' some failed, 'x' all failed); "
            "a digit marks the n-th fault event of the step (numbered below)."
        ),
        Table(
            ("step", "probe group", "rounds", "timeline"),
            [(line.step, line.group, str(len(line.rounds)), f"`{faults.strip(line)}`") for line in lines],
            (False, False, True, False),
        ),
    ]
    for step in dict.fromkeys(line.step for line in lines):
        mine = [line for line in lines if line.step == step]
        legend = "; ".join(f"{n}: {label} at {t:.2f} s" for n, (t, label) in enumerate(mine[0].events, 1))
        blocks.append(Paragraph(f"Step {step}: {legend}."))
        blocks.append(
            Figure(
                take(f"faults-{step}"),
                f"failed requests per round during step {step}, fault events marked",
                fault_timeline(step, mine),
                f"Step {step}: share of failed requests per round, per probe group; numbered lines: fault events.",
            )
        )
    return blocks
