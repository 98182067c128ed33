"""Build results/<run>/report.md and report.html from a run folder (pure: reads and writes files only).

Pipeline: experiment/ writes the run folder -> analysis/ computes tables and matrices ->
**assemble()** lays out the document -> document.py renders Markdown and HTML, figures.py draws
the PNGs (written next to report.md as report-*.png, embedded in report.html).

Every number comes from analysis/ over the raw rows, and the run's metadata only from
run.json, so a report rebuilt from the same folder is byte-identical.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from ..analysis import dataset, nat, performance, reachability, spread, verdict
from ..errors import TestbedError
from . import figures
from .document import Block, Bullets, Details, Figure, Heading, Paragraph, Table, slug, to_html, to_markdown
from .drops import drop_blocks
from .faults import fault_blocks
from .lifecycle import lifecycle_blocks

MAX_MISMATCH_ROWS = 500
MAX_TABLE_ROWS, MAX_TABLE_COLUMNS = 60, 40
FIGURE_PREFIX = "report-"
TIMING_ORDER = ("underlay", "pods", "agent", "build", "teardown")
# A box plot's quartiles over fewer samples say no more than the percentile table next to it.
MIN_BOX_SAMPLES = 20


@dataclass(frozen=True)
class Report:
    title: str
    blocks: list[Block]

    @property
    def figures(self) -> list[Figure]:
        out: list[Figure] = []

        def walk(blocks: Sequence[Block]) -> None:
            for b in blocks:
                if isinstance(b, Figure):
                    out.append(b)
                elif isinstance(b, Details):
                    walk(b.blocks)

        walk(self.blocks)
        return out


# -- formatting: one place, so tests can parse numbers back ------------------------------------


def fmt_int(value: Any) -> str:
    return str(int(value))


def fmt_ms(value: float) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def fmt_g(value: float, digits: int = 4) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}g}"


def fmt_share(value: float) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _started(meta: Mapping[str, Any]) -> str:
    stamp = meta.get("started")
    if not isinstance(stamp, (int, float)):
        return "unknown"
    return datetime.fromtimestamp(stamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(frame: pd.DataFrame, columns: Mapping[str, str], formats: Mapping[str, Any] | None = None) -> Table:
    """A document table from `frame`: column -> header, with per-column formatters."""
    formats = formats or {}

    def default(value: Any) -> str:
        if isinstance(value, float):
            return fmt_g(value, 6)
        return str(value)

    rows = [[formats.get(c, default)(rec[c]) for c in columns] for rec in frame.to_dict("records")]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]) for c in columns]
    return Table(list(columns.values()), rows, numeric)


# -- sections ---------------------------------------------------------------------------------


def _head(frame: pd.DataFrame, meta: Mapping[str, Any], run_name: str) -> tuple[str, list[Block]]:
    exp = meta.get("experiment") or {}
    name = exp.get("name") or "experiment"
    run_id = meta.get("run_id") or run_name
    title = f"{name} — run {run_id}"
    blocks: list[Block] = [Heading(1, title)]
    if exp.get("description"):
        blocks.append(Paragraph(str(exp["description"])))
    v = verdict.run_verdict(frame)
    if not v.probes:
        text = f"**Verdict: {v.word}** — the dataset has no probe."
    else:
        text = (
            f"**Verdict: {v.word}** — {v.as_expected}/{v.with_expectation} probes as expected"
            f"{'' if v.with_expectation == v.probes else f' ({v.probes - v.with_expectation} without expectation)'}"
            f"; {v.nat_violations} NAT violation(s) in {v.nat_checked} checked; {v.mismatches} mismatch(es)."
        )
    if meta.get("aborted"):  # the run stopped early: its cause is the verdict, the rows are what it measured
        blocks.append(Paragraph(f"**Verdict: ABORTED** — {meta['aborted']}", css="fail"))
        blocks.append(Paragraph("Before it stopped: " + text.split("** — ", 1)[-1], css="note"))
        return title, blocks
    blocks.append(Paragraph(text, css="pass" if v.passed else "fail"))
    if "passed" in meta and bool(meta["passed"]) != v.passed:
        blocks.append(
            Paragraph(
                f"Note: run.json says passed={bool(meta['passed'])}; this report recomputed the verdict from the rows.",
                css="note",
            )
        )
    return title, blocks


def _metadata(meta: Mapping[str, Any], frame: pd.DataFrame, run_name: str) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Run metadata", "metadata")]
    if not meta:
        return blocks + [Paragraph("No run.json in this folder: the run cannot be reproduced from it.", css="note")]
    exp, cluster = meta.get("experiment") or {}, meta.get("cluster") or {}
    facts = [
        ("run id", str(meta.get("run_id", run_name))),
        ("experiment", f"{exp.get('name', '')} ({exp.get('file', '')})"),
        ("started", _started(meta)),
        ("seed", str(meta.get("seed", ""))),
        (
            "cluster",
            f"{cluster.get('name', '')}: {cluster.get('nodes', '?')} nodes, "
            f"{cluster.get('pods', '?')} pods, routing {cluster.get('routing', '?')}",
        ),
        ("steps", ", ".join(dataset.steps_in_order(frame)) or "—"),
        ("probes", str(len(frame))),
        ("reproduce", f"`{meta['reproduce']}`" if meta.get("reproduce") else "—"),
    ]
    blocks.append(Table(["field", "value"], [[k, v] for k, v in facts]))
    inputs = meta.get("inputs") or {}
    if inputs:
        blocks.append(Table(["input file", "sha256"], [[f, str(h)] for f, h in inputs.items()]))
    env = meta.get("environment") or {}
    if env:
        blocks.append(Details("Versions", [Table(["component", "version"], [[k, str(env[k])] for k in sorted(env)])]))
    timings = meta.get("timings") or {}
    if timings:
        order = [k for k in TIMING_ORDER if k in timings] + sorted(k for k in timings if k not in TIMING_ORDER)
        blocks.append(
            Details(
                "Timings",
                [Table(["phase", "seconds"], [[k, f"{float(timings[k]):.3f}"] for k in order], [False, True])],
            )
        )
    notes = [f"warning: {w}" for w in meta.get("warnings") or []] + [f"note: {n}" for n in meta.get("notes") or []]
    if notes:
        blocks.append(Bullets(notes))
    return blocks


def _summary(frame: pd.DataFrame) -> list[Block]:
    table = verdict.summary_table(frame)
    blocks: list[Block] = [Heading(2, "Summary per communication and protocol", "summary")]
    if table.empty:
        return blocks + [Paragraph("No probe.")]
    return blocks + [
        _table(
            table,
            {
                "step": "step",
                "communication": "communication",
                "protocol": "protocol",
                "probes": "probes",
                "connected": "connected",
                "refused": "refused",
                "timeout": "timeout",
                "other": "other",
                "expected": "with expectation",
                "as_expected": "as expected",
                "nat_checked": "NAT checked",
                "nat_free": "source as expected",
            },
        )
    ]


def _nat(frame: pd.DataFrame) -> list[Block]:
    table = nat.nat_table(frame)
    blocks: list[Block] = [
        Heading(2, "NAT-free addressing", "nat"),
        Paragraph(
            "For every connected probe, the source address the server saw against the addresses the experiment "
            "expected: NAT-free (the sender's own IP; cni0's gateway when a node reaches its own pods; 127.0.0.1 "
            "between containers of one pod) or SNAT (a node's address, as for NodePort and LoadBalancer traffic "
            'from outside). "as expected" counts probes whose server saw an expected address.'
        ),
    ]
    if table.empty:
        return blocks + [Paragraph("No probe.")]
    return blocks + [_table(table, _NAT_COLUMNS)]


_NAT_COLUMNS = {
    "communication": "communication",
    "probes": "probes",
    "connected": "connected",
    "checked": "checked",
    "nat_free": "as expected",
    "violations": "violations",
    "saw_sender_ip": "saw sender's own IP",
    "expected_and_seen": "expected / seen",
    "verdict": "source as expected?",
    "unexpected_sources": "unexpected sources seen",
}


_NAT_DETAIL = ("saw_sender_ip", "expected_and_seen", "unexpected_sources")  # in the all-families table


def _nat_per_family(frame: pd.DataFrame) -> list[Block]:
    """A dual-stack run's NAT-free table for each address family (nothing for an IPv4-only run,
    nor for runs recorded before the `family` column existed)."""
    if "family" not in frame.columns or not (frame["family"] == "IPv6").any():
        return []
    blocks: list[Block] = [
        Heading(2, "NAT-free addressing per address family", "nat-family"),
        Paragraph("The same table for the probes sent over each family of the dual-stack cluster."),
    ]
    for family in ("IPv4", "IPv6"):
        table = nat.nat_table(frame[frame["family"] == family])
        if table.empty:
            continue
        blocks += [
            Heading(3, family, f"nat-{family.lower()}"),
            _table(table, {k: v for k, v in _NAT_COLUMNS.items() if k not in _NAT_DETAIL}),
        ]
    return blocks


def _expected_vs_observed(frame: pd.DataFrame) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Conformance: expected vs observed", "conformance")]
    by_step = verdict.confusion_by_step(frame) if len(dataset.steps_in_order(frame)) > 1 else {}
    for label, conf in [("all steps", verdict.confusion(frame))] + [(f"step {s}", c) for s, c in by_step.items()]:
        blocks.append(Paragraph(f"**{label}**"))
        blocks.append(
            Table(
                ["expectation", "connected", "not connected"],
                [[idx, fmt_int(row["connected"]), fmt_int(row["not connected"])] for idx, row in conf.iterrows()],
                [False, True, True],
            )
        )
    bad = verdict.mismatches(frame)
    blocks.append(Heading(3, f"Mismatches ({len(bad)})", "mismatches"))
    if bad.empty:
        return blocks + [Paragraph("None: every probe's outcome and source address are as expected.")]
    shown = bad.head(MAX_MISMATCH_ROWS)
    blocks.append(
        _table(
            shown,
            {
                "step": "step",
                "source": "from",
                "destination": "to",
                "protocol": "protocol",
                "port": "port",
                "outcome": "outcome",
                "expected": "expected",
                "seen_src_ip": "server saw",
                "expected_src_ips": "expected source",
                "problem": "problem",
            },
            {"seen_src_ip": lambda v: v or "—", "expected_src_ips": lambda v: v or "any"},
        )
    )
    if len(bad) > len(shown):
        blocks.append(Paragraph(f"… {len(bad) - len(shown)} more in probes.csv.", css="note"))
    return blocks


def _matrix_table(m: reachability.Matrix) -> Table | None:
    if m.probes.shape[0] > MAX_TABLE_ROWS or m.probes.shape[1] > MAX_TABLE_COLUMNS:
        return None
    rows = []
    for src in m.probes.index:
        cells = [
            f"{int(m.connected.at[src, d])}/{int(m.probes.at[src, d])}" if m.probes.at[src, d] else "—"
            for d in m.probes.columns
        ]
        rows.append([str(src)] + cells)
    return Table(
        ["source \\ destination"] + [str(c) for c in m.probes.columns], rows, [False] + [True] * m.probes.shape[1]
    )


def _uniform_outcome(m: reachability.Matrix) -> str | None:
    """A sentence for a matrix whose probed pairs all had one and the same outcome, when its
    heatmap would be one colour (and grey where the table below shows "—"); None when the
    heatmap has something to show."""
    probes = m.probes.to_numpy()
    probed = probes > 0
    if not probed.any():
        return None
    outcomes = set(m.outcome.to_numpy()[probed].tolist())
    if len(outcomes) != 1 or "mixed" in outcomes:
        return None
    unprobed = int((~probed).sum())
    if unprobed and _matrix_table(m) is None:  # where the grey cells are is the figure's news
        return None
    where = f"; {unprobed} not probed, — below" if unprobed else ""
    return (
        f"Every probed pair {outcomes.pop()} ({int(probed.sum())} pairs, {int(probes.sum())} probes{where}): "
        "no heatmap, it would be one colour."
    )


def _reachability(frame: pd.DataFrame, names: _Names) -> list[Block]:
    blocks: list[Block] = [
        Heading(2, "Reachability", "reachability"),
        Paragraph(
            "Share of probes that connected, per source (rows) and destination:port (columns): green all, red none; "
            "✓ connected, otherwise the outcome, or connected/probes when probes disagree; grey: not probed."
        ),
    ]
    matrices = reachability.reachability_matrices(frame)
    if not matrices:
        return blocks + [Paragraph("No probe.")]
    diffs: list[Block] = [
        Heading(2, "Expected vs observed", "difference"),
        Paragraph(
            "Observed minus expected share connected: white as expected (✓), red open although expected blocked, "
            "blue blocked although expected open; ✗ marks probes whose outcome was not the expected one; "
            "grey: no expectation."
        ),
    ]
    any_expectation = False
    for m in matrices:
        base = f"{m.step}-{m.protocol}" + (f"-{m.family}" if m.family else "")
        blocks.append(Heading(3, m.title))
        same = _uniform_outcome(m)
        if same is None:
            blocks.append(
                Figure(
                    names.take(f"reachability-{base}"),
                    f"Reachability heatmap, {m.title}",
                    figures.reachability_heatmap(m),
                )
            )
        else:  # a one-colour heatmap says only this sentence
            blocks.append(Paragraph(same, css="note"))
        table = _matrix_table(m)
        if table is not None:
            blocks.append(Details(f"Connected / probes, {m.title}", [table]))
        if m.has_expectations:
            any_expectation = True
            n_bad = int(m.mismatches.to_numpy().sum())
            diffs.append(Heading(3, f"{m.title}: {n_bad} mismatch(es)"))
            if n_bad:
                diffs.append(
                    Figure(
                        names.take(f"difference-{base}"),
                        f"Difference heatmap, {m.title}",
                        figures.difference_heatmap(m),
                    )
                )
            else:  # the figure would be all white: not drawn
                diffs.append(
                    Paragraph("Every probe as expected (the difference heatmap would be all white).", css="note")
                )
    return blocks + (diffs if any_expectation else [])


def _spread(frame: pd.DataFrame, plan: Mapping[str, Any], names: _Names) -> list[Block]:
    last = spread.last_steps(frame)  # plan.json is the final plan: its endpoints hold for the last step
    endpoints: dict[str | tuple[str, str], list[str]] = {
        (last[svc], svc): eps for svc, eps in spread.endpoints_from_plan(plan).items() if svc in last
    }
    tests = spread.spread_tests(frame, endpoints)
    if tests.empty:
        return []
    per_ep = spread.load_spread(frame, endpoints)
    blocks: list[Block] = [
        Heading(2, "Service load spread", "spread"),
        Paragraph(
            "Requests through each Service per endpoint that answered, with Pearson's chi-square test of a uniform "
            "spread (uniform: yes when p ≥ 0.05)."
        ),
    ]
    blocks.append(
        _table(
            tests,
            {
                "step": "step",
                "service": "service",
                "requests": "requests",
                "answered": "answered",
                "unanswered": "unanswered",
                "endpoints": "endpoints",
                "expected_each": "expected each",
                "chi2": "chi2",
                "dof": "dof",
                "p_value": "p-value",
                "uniform": "uniform?",
            },
            {"expected_each": fmt_g, "chi2": lambda v: fmt_g(v, 6), "p_value": fmt_g},
        )
    )
    blocks.append(
        _table(
            per_ep,
            {"step": "step", "service": "service", "endpoint": "endpoint", "requests": "requests", "share": "share"},
            {"share": fmt_share},
        )
    )
    for rec in tests.to_dict("records"):
        if int(rec["endpoints"]) < 2:  # one bar against its own expectation: the table says it all
            continue
        sub = per_ep[(per_ep["step"] == rec["step"]) & (per_ep["service"] == rec["service"])]
        png = figures.spread_bars(
            rec["step"],
            rec["service"],
            sub["endpoint"].tolist(),
            sub["requests"].tolist(),
            rec["expected_each"],
            rec["chi2"],
            rec["p_value"],
            rec["uniform"],
        )
        blocks.append(
            Figure(
                names.take(f"spread-{rec['step']}-{rec['service']}"),
                f"Load spread of {rec['service']} in step {rec['step']}",
                png,
            )
        )
    return blocks


def _latency(frame: pd.DataFrame, names: _Names) -> list[Block]:
    table = performance.latency_percentiles(frame)
    blocks: list[Block] = [
        Heading(2, "Latency", "latency"),
        Paragraph(
            "Connected probes only, in ms. TCP: the handshake's round trip as the kernel "
            "measured it (SYN to SYN-ACK: the path's own latency, however many probes "
            "were sent at once). UDP and SCTP: from sending to the agent's answer, which "
            "includes the agent's time to answer the probes sent with it."
        ),
    ]
    if table.empty:
        return blocks + [Paragraph("No connected probe with a latency.")]
    blocks.append(
        _table(
            table,
            {
                "communication": "communication",
                "protocol": "protocol",
                "samples": "samples",
                "p50": "p50 (ms)",
                "p90": "p90 (ms)",
                "p99": "p99 (ms)",
                "max": "max (ms)",
            },
            {k: fmt_ms for k in ("p50", "p90", "p99", "max")},
        )
    )
    samples = performance.latency_samples(frame)
    boxed = {k: v for k, v in samples.items() if len(v) >= MIN_BOX_SAMPLES}
    if boxed:
        blocks.append(
            Figure(
                names.take("latency"),
                "Latency box plot per communication and protocol"
                + (f" (groups of {MIN_BOX_SAMPLES} samples or more)" if len(boxed) < len(samples) else ""),
                figures.latency_boxplot(boxed),
            )
        )
    else:
        blocks.append(
            Paragraph(
                f"No box plot: no group has {MIN_BOX_SAMPLES} samples (the table above lists what a box would show).",
                css="note",
            )
        )
    return blocks


def _throughput(frame: pd.DataFrame) -> list[Block]:
    table = performance.throughput_summary(frame)
    if table is None:
        return []
    return [
        Heading(2, "Throughput", "throughput"),
        _table(
            table,
            {
                "communication": "communication",
                "protocol": "protocol",
                "samples": "samples",
                "mean": "mean (Mbit/s)",
                "min": "min (Mbit/s)",
                "p50": "p50 (Mbit/s)",
                "max": "max (Mbit/s)",
            },
            {k: lambda v: f"{v:.2f}" for k in ("mean", "min", "p50", "max")},
        ),
    ]


class _Names:
    """Unique, deterministic PNG file names."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, stem: str) -> str:
        base = FIGURE_PREFIX + slug(stem)
        name, n = f"{base}.png", 1
        while name in self.used:
            n += 1
            name = f"{base}-{n}.png"
        self.used.add(name)
        return name


def assemble(frame: pd.DataFrame, meta: Mapping[str, Any], plan: Mapping[str, Any], run_name: str = "run") -> Report:
    """The whole report as blocks (figures drawn), from a normalized dataset and run.json."""
    names = _Names()
    title, blocks = _head(frame, meta, run_name)
    blocks += _metadata(meta, frame, run_name)
    blocks += _summary(frame)
    blocks += _nat(frame)
    blocks += _nat_per_family(frame)
    blocks += _reachability(frame, names)
    blocks += _expected_vs_observed(frame)
    blocks += drop_blocks(frame)
    blocks += _spread(frame, plan, names)
    blocks += fault_blocks(frame, meta, names.take)
    blocks += _latency(frame, names)
    blocks += _throughput(frame)
    blocks += lifecycle_blocks(meta, frame)
    blocks += [
        Heading(2, "Files", "files"),
        Paragraph(
            "probes.csv / probes.parquet: one row per probe (columns in schema.json); plan.json: what was built; "
            "run.json: inputs' hashes, versions, timings; report-*.png: the figures above. "
            "Rebuild this report with `testbed report <run-dir>`."
        ),
    ]
    return Report(title, blocks)


def build_report(run_dir: str) -> tuple[str, str]:
    """Write report.md, report.html and the report-*.png figures into `run_dir`; return both paths."""
    frame = dataset.load_dataset(run_dir)
    meta = dataset.load_meta(run_dir)
    plan = dataset.load_plan(run_dir)
    report = assemble(frame, meta, plan, os.path.basename(os.path.normpath(run_dir)))
    wanted = {f.filename for f in report.figures}
    md_path, html_path = os.path.join(run_dir, "report.md"), os.path.join(run_dir, "report.html")
    try:
        for old in sorted(os.listdir(run_dir)):  # figures of an earlier build that this one no longer draws
            if old.startswith(FIGURE_PREFIX) and old.endswith(".png") and old not in wanted:
                os.remove(os.path.join(run_dir, old))
        for fig in report.figures:
            with open(os.path.join(run_dir, fig.filename), "wb") as handle:
                handle.write(fig.png)
        with open(md_path, "w", encoding="utf-8") as handle:
            handle.write(to_markdown(report.blocks))
        with open(html_path, "w", encoding="utf-8") as handle:
            handle.write(to_html(report.title, report.blocks))
    except OSError as exc:
        raise TestbedError(f"{run_dir}: cannot write the report: {exc}") from exc
    return md_path, html_path
