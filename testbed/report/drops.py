"""The report's "Where blocked flows died" section (pure): drop evidence per rule.

Rows of probes that did not connect carry how that was known (`evidence`: drop-log, timeout,
reset) and, when a node logged the drop or reject of the probe's packet, where (`drop_at`:
node/table/chain[rule]), whose rule it is (`drop_owner`) and whether `testbed explain --trace`
predicts the flow ends there (`drop_as_traced`). The section counts the evidence and lists each
rule that dropped, with its flows; it is left out of runs that recorded no evidence.
"""

from __future__ import annotations

import pandas as pd

from .document import Block, Heading, Paragraph, Table

MAX_RULES = 60
MAX_FLOWS_SHOWN = 3


def drop_blocks(frame: pd.DataFrame) -> list[Block]:
    failed = frame[(frame["outcome"] != "connected") & (frame["evidence"] != "")] if "evidence" in frame else frame[:0]
    if failed.empty:
        return []
    counts = failed["evidence"].value_counts()
    blocks: list[Block] = [
        Heading(2, "Where blocked flows died", "drops"),
        Paragraph(
            f"Of {len(failed)} probes that did not connect: {int(counts.get('drop-log', 0))} were known blocked "
            f"when a node logged the drop of their packet, {int(counts.get('timeout', 0))} by their timeout, "
            f"{int(counts.get('reset', 0))} by a reset or ICMP error. Each logged rule, whose it is, and whether "
            "it is where `testbed explain --trace` says the flow ends:"
        ),
    ]
    logged = failed[failed["drop_at"] != ""]
    if logged.empty:
        return blocks + [Paragraph("No drop was logged.")]
    rows = []
    for (where, owner), group in logged.groupby(["drop_at", "drop_owner"], sort=True):
        traced = group["drop_as_traced"]
        agree = int((traced == True).sum())  # noqa: E712 -- a nullable boolean column
        flows = [
            f"{r.src_name} → {r.dst_name} {r.protocol}/{r.port}"
            for r in group.drop_duplicates(["src_name", "dst_name", "protocol", "port"])
            .head(MAX_FLOWS_SHOWN)
            .itertuples()
        ]
        rows.append([where, owner or "—", str(len(group)), f"{agree}/{len(group)}", "; ".join(flows)])
    blocks.append(
        Table(
            ["dropped at", "rule of", "probes", "as traced", "flows (first ones)"],
            rows[:MAX_RULES],
            [False, False, True, True, False],
        )
    )
    if len(rows) > MAX_RULES:
        blocks.append(Paragraph(f"… {len(rows) - MAX_RULES} more rules in probes.csv.", css="note"))
    return blocks
