"""The scale issue's targets, and the table that sets measured figures against them (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One measured figure: `value` in `unit`, compared with `limit` by `op` ("<=" or ">=")."""

    key: str
    what: str
    value: float
    unit: str
    limit: float | None = None
    op: str = "<="
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.limit is None:
            return None
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    def measured(self) -> str:
        return f"{_num(self.value)} {self.unit}".strip()

    def target(self) -> str:
        return (
            "—" if self.limit is None else f"{'≤' if self.op == '<=' else '≥'} {_num(self.limit)} {self.unit}".strip()
        )

    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: "info"}[self.met]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"met": self.met}


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def counts(value: Any) -> str:
    """Readable text for a note: {"connected": 440, "timeout": 46} -> "440 connected, 46 timeout";
    nested mappings as "via_service: 2000 connected"; anything else as str()."""
    if isinstance(value, dict):
        if not value:
            return "none"
        return ", ".join(
            f"{v} {k}"
            if isinstance(v, (int, float)) and not isinstance(v, bool)
            else f"{str(k).replace('_', ' ')}: {counts(v)}"
            for k, v in value.items()
        )
    return str(value)


def table(figures: list[Figure], markdown: bool = False) -> str:
    """Aligned text (or a Markdown table) of figure, measured, target, verdict, note."""
    rows = [("figure", "measured", "target", "", "note")]
    rows += [(f.what, f.measured(), f.target(), f.verdict(), f.note) for f in figures]
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|---|---:|---:|---|---|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows[1:]]) + "\n"
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    out = []
    for r in rows:
        out.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) if i < 3 else c.ljust(w)
                for i, (c, w) in enumerate(zip(r[:4], widths))
            )
            + ("  " + r[4] if r[4] else "")
        )
    return "\n".join(out) + "\n"
