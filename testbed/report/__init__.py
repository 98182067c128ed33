"""Reports of a run: results/<run>/report.md and a self-contained report.html, and run comparisons.

Pipeline: experiment/ (the run folder) -> analysis/ (tables, matrices, tests) -> **report/**:
build.py lays the report out, figures.py draws PNGs with matplotlib's Agg canvas, document.py
renders Markdown and HTML, compare.py says what changed between two runs. Pure: files in,
files out; no root, no subprocess, no network.

CLI hooks: build_report(run_dir) -> (report.md, report.html) and compare.compare_runs(a, b).
"""

from __future__ import annotations


def build_report(run_dir: str) -> tuple[str, str]:
    """Write report.md, report.html and report-*.png into `run_dir`; return (report.md, report.html).

    A missing folder or a folder without a dataset raises testbed.analysis.ResultsError
    (a TestbedError). Heavy imports (pandas, matplotlib) happen only when called.
    """
    from .build import build_report as build  # deferred: pandas and matplotlib, only when called

    return build(run_dir)


__all__ = ["build_report"]
