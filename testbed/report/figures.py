"""The report's figures as PNG bytes, drawn with matplotlib's Agg canvas (pure: no display, no pyplot).

Pipeline: analysis/ tables and matrices -> **figures** here -> report/build.py writes each PNG
next to report.md and embeds it in report.html.

Deterministic: figure sizes follow only the data's shape, axes come sorted from analysis/,
and the PNG carries no software or date metadata, so the same dataset gives the same bytes.
Heatmaps carry a colour bar that says what colours mean; grey cells were not probed (or had
no expectation); each cell is annotated (✓, the outcome, or connected/probes) while the
matrix is small enough to read.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..analysis.reachability import Matrix

DPI = 100
GREY = "#d9d9d9"
PROTOCOL_COLOURS = {"TCP": "#1f77b4", "UDP": "#ff7f0e", "SCTP": "#2ca02c", "ICMP": "#9467bd"}
SHORT_OUTCOME = {
    "connected": "✓",
    "refused": "refused",
    "timeout": "timeout",
    "unreachable": "unreach",
    "error": "error",
    "mixed": "",
}
MAX_ANNOTATED_CELLS = 900
MAX_LABELS = 120


def _new_figure(width: float, height: float) -> Any:  # a matplotlib Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # deferred
    from matplotlib.figure import Figure  # deferred: matplotlib loads only when a figure is drawn

    fig = Figure(figsize=(round(width, 2), round(height, 2)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _clip(label: str, width: int = 40) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _label_size(n: int) -> float:
    return 8 if n <= 40 else 6 if n <= 80 else 5


def _text_colour(rgba: Sequence[float]) -> str:
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _heatmap(
    values: pd.DataFrame,
    notes: np.ndarray | None,
    title: str,
    cmap_name: str,
    vmin: float,
    vmax: float,
    bar_label: str,
    ticks: Sequence[float],
    tick_labels: Sequence[str],
    missing: str,
) -> bytes:
    from matplotlib import colormaps  # deferred: matplotlib loads only when a figure is drawn
    from matplotlib.patches import Patch  # deferred: matplotlib loads only when a figure is drawn

    rows = [_clip(str(r)) for r in values.index]
    cols = [_clip(str(c)) for c in values.columns]
    nr, nc = max(len(rows), 1), max(len(cols), 1)
    longest_row = max((len(r) for r in rows), default=4)
    longest_col = max((len(c) for c in cols), default=4)
    width = min(24.0, max(6.5, 0.075 * longest_row + 0.62 * nc + 2.6))
    height = min(24.0, max(3.5, 0.055 * longest_col + 0.42 * nr + 1.6))
    fig = _new_figure(width, height)
    ax = fig.add_subplot()
    cmap = colormaps[cmap_name].with_extremes(bad=GREY)
    data = np.ma.masked_invalid(values.to_numpy(dtype="float64")) if values.size else np.ma.zeros((1, 1))
    image = ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_xlabel("destination", fontsize=9)
    ax.set_ylabel("source", fontsize=9)
    if len(cols) <= MAX_LABELS:
        ax.set_xticks(
            range(len(cols)), cols, rotation=45, ha="right", rotation_mode="anchor", fontsize=_label_size(len(cols))
        )
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"destination ({len(cols)}, labels omitted)", fontsize=9)
    if len(rows) <= MAX_LABELS:
        ax.set_yticks(range(len(rows)), rows, fontsize=_label_size(len(rows)))
    else:
        ax.set_yticks([])
        ax.set_ylabel(f"source ({len(rows)}, labels omitted)", fontsize=9)
    if max(nr, nc) <= MAX_LABELS // 2:  # cell borders, while cells are big enough to need them
        ax.set_xticks(np.arange(-0.5, nc, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, nr, 1), minor=True)
        ax.grid(which="minor", color="white", linewidth=1)
        ax.tick_params(which="minor", length=0)
    if notes is not None and values.size and values.size <= MAX_ANNOTATED_CELLS:
        size = 11 if values.size <= 100 else 8 if values.size <= 400 else 6
        for (i, j), text in np.ndenumerate(notes):
            if text:
                v = data[i, j]
                colour = "black" if np.ma.is_masked(v) else _text_colour(cmap(image.norm(v)))
                ax.text(
                    j, i, text, ha="center", va="center", fontsize=size if len(text) <= 2 else size - 2, color=colour
                )
    bar = fig.colorbar(image, ax=ax, shrink=0.85, pad=0.02)
    bar.set_label(bar_label, fontsize=9)
    bar.set_ticks(list(ticks), labels=list(tick_labels), fontsize=8)
    if bool(np.ma.getmaskarray(data).any()) and values.size:
        try:
            fig.legend(
                handles=[Patch(facecolor=GREY, edgecolor="#999", label=missing)],
                loc="outside lower right",
                fontsize=8,
                frameon=False,
            )
        except ValueError:  # matplotlib < 3.7 has no "outside" legends; the caption says it too
            pass
    return _png(fig)


def _proto(m: Matrix) -> str:
    return f"{m.protocol}/{m.port}" if m.port is not None else m.protocol


def reachability_heatmap(m: Matrix) -> bytes:
    """Share of probes connected per source x destination, red (none) to green (all)."""
    notes = np.full(m.share.shape, "", dtype=object)
    for i in range(m.share.shape[0]):
        for j in range(m.share.shape[1]):
            n = int(m.probes.iat[i, j])
            if not n:
                continue
            outcome = str(m.outcome.iat[i, j])
            notes[i, j] = (
                SHORT_OUTCOME.get(outcome, outcome[:8]) if outcome != "mixed" else f"{int(m.connected.iat[i, j])}/{n}"
            )
    return _heatmap(
        m.share,
        notes,
        f"Reachability · step {m.step} · {_proto(m)}",
        "RdYlGn",
        0.0,
        1.0,
        "share of probes connected",
        [0.0, 0.5, 1.0],
        ["0: none", "0.5", "1: all"],
        "not probed",
    )


def difference_heatmap(m: Matrix) -> bytes:
    """Observed minus expected share connected: white as expected, red open, blue blocked."""
    notes = np.full(m.difference.shape, "", dtype=object)
    for i in range(m.difference.shape[0]):
        for j in range(m.difference.shape[1]):
            if np.isnan(m.expected.iat[i, j]):
                continue
            bad, n = int(m.mismatches.iat[i, j]), int(m.probes.iat[i, j])
            notes[i, j] = "✓" if not bad else ("✗" if n == 1 else f"✗ {bad}/{n}")
    return _heatmap(
        m.difference,
        notes,
        f"Expected vs observed · step {m.step} · {_proto(m)}",
        "bwr",
        -1.0,
        1.0,
        "observed − expected",
        [-1.0, 0.0, 1.0],
        ["−1: blocked,\nexpected open", "0: as expected", "+1: open,\nexpected blocked"],
        "not probed, or no expectation",
    )


def spread_bars(
    step: str,
    service: str,
    endpoints: Sequence[str],
    requests: Sequence[int],
    expected: float,
    chi2: float,
    p_value: float,
    uniform: str,
) -> bytes:
    """Requests per endpoint with the uniform expectation as a dashed line."""
    labels = [_clip(e, 32) for e in endpoints]
    fig = _new_figure(min(16.0, max(5.5, 0.8 * len(labels) + 2.5)), 4.2)
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    bars = ax.bar(x, list(requests), color="#4c72b0", width=0.6)
    ax.bar_label(bars, fontsize=8, padding=2)
    if expected == expected:  # not NaN
        ax.axhline(expected, color="#c44e52", linestyle="--", linewidth=1.2, label=f"uniform: {expected:.1f} each")
        ax.legend(fontsize=8, loc="best")
    ax.set_xticks(
        x, labels, rotation=30 if len(labels) > 3 else 0, ha="right" if len(labels) > 3 else "center", fontsize=8
    )
    ax.set_ylabel("requests answered", fontsize=9)
    ax.set_ylim(0, max(list(requests) + [expected if expected == expected else 0, 1]) * 1.15)
    verdict = "n/a" if p_value != p_value else f"χ² = {chi2:.2f}, p = {p_value:.3g}, uniform: {uniform}"
    ax.set_title(f"{service} — {step}\n{verdict}", fontsize=10, loc="left")
    return _png(fig)


def latency_boxplot(samples: Mapping[tuple[str, str], Sequence[float]]) -> bytes:
    """One horizontal box per communication and protocol (connected probes), coloured by protocol."""
    from matplotlib.patches import Patch  # deferred: matplotlib loads only when a figure is drawn

    keys = [k for k, v in samples.items() if len(v)]
    labels = [f"{comm} · {proto}" for comm, proto in keys]
    fig = _new_figure(9.0, min(24.0, max(3.0, 0.38 * len(keys) + 1.4)))
    ax = fig.add_subplot()
    if keys:
        data = [list(samples[k]) for k in keys]
        style = {
            "patch_artist": True,
            "widths": 0.6,
            "medianprops": {"color": "black"},
            "flierprops": {"markersize": 3},
        }
        try:
            box = ax.boxplot(data, orientation="horizontal", tick_labels=labels, **style)
        except TypeError:  # matplotlib < 3.10
            box = ax.boxplot(data, vert=False, labels=labels, **style)
        for patch, (_, proto) in zip(box["boxes"], keys):
            patch.set_facecolor(PROTOCOL_COLOURS.get(proto, "#999999"))
            patch.set_alpha(0.75)
        ax.invert_yaxis()  # first group on top, as in the tables
        protos = list(dict.fromkeys(p for _, p in keys))
        ax.legend(
            handles=[Patch(facecolor=PROTOCOL_COLOURS.get(p, "#999999"), alpha=0.75, label=p) for p in protos],
            fontsize=8,
            loc="best",
        )
    ax.set_xlabel("latency of connected probes (ms)", fontsize=9)
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="x", color="#e5e5e5")
    ax.set_title("Latency per kind of communication and protocol", fontsize=11, loc="left")
    return _png(fig)


def fault_timeline(step: str, lines: Sequence[Any]) -> bytes:
    """Each probe group's share of failed requests per round over time (one row of bars per
    group), the step's fault events as numbered vertical lines (analysis/faults.py's timelines)."""
    fig = _new_figure(9.0, 1.2 + 0.9 * len(lines))
    axes = fig.subplots(len(lines), 1, sharex=True, squeeze=False)[:, 0]
    for ax, line in zip(axes, lines):
        times = [r.time for r in line.rounds]
        failed = [(r.total - r.ok) / r.total if r.total else 0.0 for r in line.rounds]
        ax.bar(times, failed, width=0.08, color="#c44e52", align="edge")
        ax.set_ylim(0, 1.05)
        ax.set_yticks([0, 1], ["0", "all"], fontsize=7)
        ax.set_ylabel(_clip(line.group, 18), fontsize=8, rotation=0, ha="right", va="center")
        for n, (t, _label) in enumerate(line.events, 1):
            ax.axvline(t, color="#4c72b0", linewidth=1.0, linestyle="--")
            ax.text(t, 1.0, f" {n}", fontsize=7, color="#4c72b0", va="top")
    axes[-1].set_xlabel("seconds since the step's first round", fontsize=9)
    axes[0].set_title(f"failed requests per round — {step}", fontsize=10, loc="left")
    return _png(fig)
