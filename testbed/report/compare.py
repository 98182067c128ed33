"""What changed between two runs, as Markdown (pure: reads two run folders).

Pipeline: two results/<run>/ folders -> analysis/ on each -> **compare_runs()** -> printed by
`testbed compare <run-a> <run-b>`.

Probes are matched across runs by what they are, not by where they were sent: experiment, step, group,
attempt, both ends (kind, namespace, name), Service, protocol and port (the n-th duplicate
matches the n-th). Addresses are left out of the key, so a pod recreated with a new IP is
still the same probe; a different seed renames pods, and its probes then show as only in
one run. Two runs of different experiments share no probe: the comparison says so, and their
steps show as only in one run rather than as changed.
"""

from __future__ import annotations

import math
import os

import pandas as pd

from ..analysis import dataset, nat, performance, verdict
from .document import Block, Bullets, Heading, Paragraph, Table, to_markdown

KEY = (
    "experiment",
    "step",
    "group",
    "attempt",
    "src_kind",
    "src_namespace",
    "src_name",
    "dst_kind",
    "dst_namespace",
    "dst_name",
    "service",
    "service_port",
    "protocol",
    "port",
)
MAX_CHANGED_ROWS = 500


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    if "experiment" not in out:  # a bare dataset: one experiment
        out["experiment"] = ""
    out["_n"] = out.groupby(list(KEY), sort=False).cumcount()
    return out


def changed_probes(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """(probes present in both runs whose outcome differs, count only in a, count only in b)."""
    cols = list(KEY) + ["_n"]
    left = _keyed(a)[cols + ["outcome", "expected_outcome", "src_ip", "dst_ip"]]
    right = _keyed(b)[cols + ["outcome", "expected_outcome", "src_ip", "dst_ip"]]
    merged = left.merge(right, on=cols, how="outer", suffixes=("_a", "_b"), indicator=True)
    only_a = int((merged["_merge"] == "left_only").sum())
    only_b = int((merged["_merge"] == "right_only").sum())
    both = merged[merged["_merge"] == "both"]
    changed = both[both["outcome_a"] != both["outcome_b"]].drop(columns=["_merge"]).reset_index(drop=True)
    return changed, only_a, only_b


def _ms(value: float) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _verdict_blocks(name_a: str, name_b: str, a: pd.DataFrame, b: pd.DataFrame) -> list[Block]:
    va, vb = verdict.run_verdict(a), verdict.run_verdict(b)
    change = "unchanged" if va.word == vb.word else "changed"
    rows = [
        [
            label,
            v.word,
            str(v.probes),
            f"{v.as_expected}/{v.with_expectation}",
            str(v.nat_violations),
            str(v.mismatches),
        ]
        for label, v in (("A: " + name_a, va), ("B: " + name_b, vb))
    ]
    return [
        Heading(2, "Verdict"),
        Paragraph(f"**{va.word} → {vb.word}** ({change})."),
        Table(
            ["run", "verdict", "probes", "as expected", "NAT violations", "mismatches"],
            rows,
            [False, False, True, True, True, True],
        ),
    ]


def _counts_blocks(a: pd.DataFrame, b: pd.DataFrame) -> list[Block]:
    key = ["experiment", "step", "communication", "protocol"]
    sa = verdict.summary_table(a).assign(experiment=_experiment(a))
    sb = verdict.summary_table(b).assign(experiment=_experiment(b))
    same = _experiment(a) == _experiment(b)
    merged = sa.merge(sb, on=key, how="outer", suffixes=("_a", "_b"))
    order = {k: i for i, k in enumerate(list(zip(*[sa[c] for c in key])) + list(zip(*[sb[c] for c in key])))}
    rows = []
    for rec in sorted(merged.to_dict("records"), key=lambda r: order.get(tuple(r[c] for c in key), 0)):

        def n(col: str, side: str) -> int:
            v = rec.get(f"{col}_{side}")  # noqa: B023 -- n() is called in this iteration only
            return 0 if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)

        values = [(n(c, "a"), n(c, "b")) for c in ("probes", "connected", "as_expected", "nat_free")]
        changed = "yes" if any(x != y for x, y in values) else ""
        if not values[0][0] or not values[0][1]:  # a row of one run only: nothing to compare it with
            changed = "only in A" if values[0][0] else "only in B"
        step = rec["step"] if same else f"{rec['experiment']}: {rec['step']}"
        rows.append(
            [step, rec["communication"], rec["protocol"]]
            + [str(x) for pair in values for x in pair]
            + [f"{values[1][1] - values[1][0]:+d}", changed]
        )
    if not rows:
        return [Heading(2, "Counts per communication and protocol"), Paragraph("No probe in either run.")]
    return [
        Heading(2, "Counts per communication and protocol"),
        Table(
            [
                "step",
                "communication",
                "protocol",
                "probes A",
                "probes B",
                "connected A",
                "connected B",
                "as expected A",
                "as expected B",
                "source as expected A",
                "source as expected B",
                "Δ connected",
                "changed",
            ],
            rows,
            [False] * 3 + [True] * 9 + [False],
        ),
    ]


def _experiment(frame: pd.DataFrame) -> str:
    values = frame["experiment"].unique() if "experiment" in frame else []
    return str(values[0]) if len(values) else ""


def _changed_blocks(a: pd.DataFrame, b: pd.DataFrame) -> list[Block]:
    changed, only_a, only_b = changed_probes(a, b)
    blocks: list[Block] = [Heading(2, f"Probes whose outcome changed ({len(changed)})")]
    if only_a or only_b:
        blocks.append(Paragraph(f"{only_a} probe(s) only in A and {only_b} only in B (not compared)."))
    if changed.empty:
        return blocks + [Paragraph("None.")]
    rows = []
    for rec in changed.head(MAX_CHANGED_ROWS).to_dict("records"):
        src = dataset.party_label(rec["src_kind"], rec["src_name"], rec["src_namespace"])
        dst = (
            dataset.party_label("service", rec["service"], rec["dst_namespace"])
            if rec["service"]
            else dataset.party_label(rec["dst_kind"] or "pod", rec["dst_name"], rec["dst_namespace"])
        )
        exp = (
            rec["expected_outcome_a"]
            if rec["expected_outcome_a"] == rec["expected_outcome_b"]
            else f"{rec['expected_outcome_a']} → {rec['expected_outcome_b']}"
        )
        rows.append(
            [
                rec["step"],
                src,
                dst,
                rec["protocol"],
                str(rec["port"]),
                str(rec["attempt"]),
                rec["outcome_a"],
                rec["outcome_b"],
                exp or "—",
            ]
        )
    blocks.append(
        Table(
            ["step", "from", "to", "protocol", "port", "attempt", "outcome A", "outcome B", "expected"],
            rows,
            [False, False, False, False, True, True, False, False, False],
        )
    )
    if len(changed) > MAX_CHANGED_ROWS:
        blocks.append(Paragraph(f"… {len(changed) - MAX_CHANGED_ROWS} more."))
    return blocks


def _nat_blocks(a: pd.DataFrame, b: pd.DataFrame) -> list[Block]:
    va, vb = nat.nat_verdicts(a), nat.nat_verdicts(b)
    comms = dataset.communications_in_order(set(va) | set(vb))
    rows = [[c, va.get(c, "—"), vb.get(c, "—"), "yes" if va.get(c) != vb.get(c) else ""] for c in comms]
    blocks: list[Block] = [Heading(2, "NAT-free verdicts")]
    if not rows:
        return blocks + [Paragraph("No probe in either run.")]
    return blocks + [Table(["communication", "source as expected? A", "source as expected? B", "changed"], rows)]


def _latency_blocks(a: pd.DataFrame, b: pd.DataFrame) -> list[Block]:
    pa, pb = performance.latency_p50(a), performance.latency_p50(b)
    keys = list(dict.fromkeys(list(pa) + list(pb)))
    rank = {c: i for i, c in enumerate(dataset.communications_in_order(k[0] for k in keys))}
    keys.sort(key=lambda k: (rank[k[0]], dataset.PROTOCOL_ORDER.get(k[1], 9), k[1]))
    rows = []
    for comm, proto in keys:
        x, y = pa.get((comm, proto), float("nan")), pb.get((comm, proto), float("nan"))
        delta = y - x
        pct = f"{100 * delta / x:+.1f}%" if x == x and y == y and x else "—"
        rows.append([comm, proto, _ms(x), _ms(y), "—" if delta != delta else f"{delta:+.3f}", pct])
    blocks: list[Block] = [Heading(2, "Latency p50 (ms, connected probes)")]
    if not rows:
        return blocks + [Paragraph("No latency in either run.")]
    return blocks + [
        Table(
            ["communication", "protocol", "p50 A", "p50 B", "Δ ms", "Δ %"], rows, [False, False, True, True, True, True]
        )
    ]


def compare_runs(run_a: str, run_b: str) -> str:
    """Markdown: verdicts, counts per communication/protocol, changed probes, NAT verdicts, p50 deltas."""
    a, b = dataset.load_dataset(run_a), dataset.load_dataset(run_b)
    ma, mb = dataset.load_meta(run_a), dataset.load_meta(run_b)
    name_a = str(ma.get("run_id") or os.path.basename(os.path.normpath(run_a)))
    name_b = str(mb.get("run_id") or os.path.basename(os.path.normpath(run_b)))
    facts = []
    for label, meta, path in (("A", ma, run_a), ("B", mb, run_b)):
        exp = (meta.get("experiment") or {}).get("name", "?")
        facts.append(f"{label}: `{path}` — experiment {exp}, seed {meta.get('seed', '?')}")
    if ma.get("inputs") and mb.get("inputs") and ma.get("inputs") != mb.get("inputs"):
        differ = sorted(k for k in set(ma["inputs"]) | set(mb["inputs"]) if ma["inputs"].get(k) != mb["inputs"].get(k))
        facts.append("inputs that differ: " + ", ".join(differ))
    exp_a = str((ma.get("experiment") or {}).get("name") or "?")
    exp_b = str((mb.get("experiment") or {}).get("name") or "?")
    a, b = a.assign(experiment=exp_a), b.assign(experiment=exp_b)
    blocks: list[Block] = [Heading(1, f"Comparison: {name_a} → {name_b}"), Bullets(facts)]
    if exp_a != exp_b:
        blocks.append(
            Paragraph(
                f"**A and B ran different experiments ({exp_a} and {exp_b})**: their probes and "
                "steps are not the same ones, so none is compared with another; each run's rows "
                "show as only in A or only in B."
            )
        )
    blocks += _verdict_blocks(name_a, name_b, a, b)
    blocks += _counts_blocks(a, b)
    blocks += _changed_blocks(a, b)
    blocks += _nat_blocks(a, b)
    blocks += _latency_blocks(a, b)
    return to_markdown(blocks)
