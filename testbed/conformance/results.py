"""What a run of the suite found: mismatches, step, case and run results (pure data).

check.py fills StepResults, the runner (run.py) CaseResults and a Summary; junit.py and the
runner's Markdown read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .steps import Case

Probe = tuple[str, str, int, str]  # (source pod, destination pod, port, protocol)


@dataclass(frozen=True)
class Mismatch:
    source: str
    destination: str
    port: int
    protocol: str
    expected: bool
    observed: bool | None  # None: not measured
    explanation: str = ""  # the oracle's words (explain_flow), filled by explain()

    @property
    def probe(self) -> Probe:
        return (self.source, self.destination, self.port, self.protocol)

    def describe(self) -> str:
        seen = "not measured" if self.observed is None else ("allowed" if self.observed else "blocked")
        return (
            f"{self.source} -> {self.destination} {self.protocol}/{self.port}: "
            f"expected {'allowed' if self.expected else 'blocked'}, observed {seen}"
        )


@dataclass(frozen=True)
class StepResult:
    index: int
    note: str
    probes: int  # probes expected
    mismatches: tuple[Mismatch, ...] = ()
    seconds: float = 0.0  # time to enforce the step (apply -> rules in place)
    allowed: int = 0  # probes the oracle allows

    @property
    def passed(self) -> bool:
        return not self.mismatches


@dataclass(frozen=True)
class CaseResult:
    case: Case
    steps: tuple[StepResult, ...] = ()
    seconds: float = 0.0
    error: str = ""  # the runner could not run the case (an exception, a build failure...)
    skipped: str = ""  # why the case was not run

    @property
    def name(self) -> str:
        return self.case.name

    @property
    def mismatches(self) -> int:
        return sum(len(s.mismatches) for s in self.steps)

    @property
    def probes(self) -> int:
        return sum(s.probes for s in self.steps)

    @property
    def status(self) -> str:
        if self.skipped:
            return "skipped"
        if self.error:
            return "error"
        return "failed" if self.mismatches else "passed"


@dataclass
class Summary:
    """A run of the suite: what the runner fills, what the JUnit file and the report read."""

    seed: int = 0
    results: list[CaseResult] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)  # topology, run id, timings...

    def add(self, result: CaseResult) -> None:
        self.results.append(result)

    def counts(self) -> dict[str, int]:
        by_status = {s: 0 for s in ("passed", "failed", "error", "skipped")}
        for r in self.results:
            by_status[r.status] += 1
        return {
            "cases": len(self.results),
            **by_status,
            "steps": sum(len(r.steps) for r in self.results),
            "probes": sum(r.probes for r in self.results),
            "mismatches": sum(r.mismatches for r in self.results),
        }

    def by_tag(self) -> dict[str, dict[str, int]]:
        """{tag: {cases, passed, failed, error, skipped}} over every tag of every case."""
        out: dict[str, dict[str, int]] = {}
        for r in self.results:
            for tag in r.case.tags:
                row = out.setdefault(tag, {"cases": 0, "passed": 0, "failed": 0, "error": 0, "skipped": 0})
                row["cases"] += 1
                row[r.status] += 1
        return dict(sorted(out.items()))

    @property
    def passed(self) -> bool:
        c = self.counts()
        return c["failed"] == 0 and c["error"] == 0


def summary_lines(summary: Summary) -> list[str]:
    """A few lines for a terminal: counts, then each failed case and its first mismatches."""
    c = summary.counts()
    lines = [
        f"{c['cases']} cases, {c['steps']} steps, {c['probes']} probes: {c['passed']} passed, "
        f"{c['failed']} failed, {c['error']} errors, {c['skipped']} skipped; {c['mismatches']} mismatches"
    ]
    for r in summary.results:
        if r.status in ("failed", "error"):
            lines.append(f"  {r.status.upper()} {r.name}: " + (r.error or f"{r.mismatches} mismatches"))
            shown = [m for s in r.steps for m in s.mismatches][:3]
            lines += [f"    {m.describe()}" for m in shown]
    return lines
