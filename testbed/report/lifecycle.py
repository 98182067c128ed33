"""The report's "Pod lifecycle" section (pure; report/, issue 19): the delays a run used, each
step's race windows beside its failed requests, and the timeline of every event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..analysis.lifecycle import step_table
from .document import Block, Details, Heading, Paragraph, Table

MAX_TIMELINE_ROWS = 400
QUIET = ("probe", "started", "available")  # shown in run.json, left out of the report's table


def lifecycle_blocks(meta: Mapping[str, Any], frame: pd.DataFrame) -> list[Block]:
    life = meta.get("lifecycle") or {}
    if not life:
        return []
    delays = life.get("delays") or {}
    timeline = list(life.get("timeline") or [])
    blocks: list[Block] = [
        Heading(2, "Pod lifecycle", "lifecycle"),
        Paragraph(
            "Changes were played in time: kubelet's probes and termination (preStop, SIGTERM, grace period), "
            "the EndpointSlice controller and each node's kube-proxy followed with the delays below "
            f"(virtual seconds; one took {float(delays.get('time_scale', 1.0)):g} s of real time). A race window "
            "runs from a pod's exit to the last node's kube-proxy sync that stopped sending it new connections."
        ),
        Table(["delay", "seconds"], [[k, f"{float(v):g}"] for k, v in delays.items()], [False, True]),
    ]
    table = step_table(timeline, frame)
    if len(table):
        blocks.append(
            Table(
                [
                    "step",
                    "pods exited",
                    "with a race window",
                    "longest window (s)",
                    "probes during",
                    "failed",
                    "failed in a window",
                ],
                [
                    [
                        str(r.step),
                        str(r.exited),
                        str(r.windows),
                        f"{float(r.longest):.2f}",
                        str(r.probes),
                        str(r.failed),
                        str(r.in_windows),
                    ]
                    for r in table.itertuples()
                ],
                [False, True, True, True, True, True, True],
            )
        )
    shown = [e for e in timeline if e.get("event") not in QUIET]
    rows = [
        [
            str(e.get("step", "")),
            f"{float(e['t']):.2f}",
            str(e.get("event", "")),
            str(e.get("pod", "")),
            str(e.get("node", "")),
            str(e.get("detail", "")) + (f"; stops: {', '.join(e['stopped'])}" if e.get("stopped") else ""),
        ]
        for e in shown[:MAX_TIMELINE_ROWS]
    ]
    note = (
        f" (the first {MAX_TIMELINE_ROWS} of {len(shown)}; run.json has them all)"
        if len(shown) > MAX_TIMELINE_ROWS
        else ""
    )
    blocks.append(Details(f"Timeline{note}", [Table(["step", "t (s)", "event", "pod", "node", "detail"], rows)]))
    return blocks
