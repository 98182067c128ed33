"""JUnit XML for the NetworkPolicy conformance suite (`testbed conformance`); pure.

    text = junit_xml("netpol-conformance", summary)      # a conformance.results.Summary
    text = junit_xml("netpol-conformance", results, properties={"seed": 0})   # or CaseResults

One <testcase> per case, classname `conformance.<family>` (the case's first tag, e.g.
conformance.ip-block), so CI viewers group cases by feature. A case with mismatches has one
<failure> listing every mismatch (source, destination, protocol/port, expected, observed),
each followed by the oracle's explanation; a case the runner could not run has an <error>,
a case not run a <skipped>. <system-out> carries the description, the tags and each step's
change and enforcement time. The suite's <properties> hold the seed, the counts and any
properties the runner adds. Characters XML 1.0 cannot carry are dropped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Any

from .results import CaseResult, Summary

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: Any) -> str:
    return _INVALID_XML.sub("", str(text))


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "es" if word.endswith("h") else "s")


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def failure_text(result: CaseResult) -> str:
    """Every mismatch of the case, step by step, with the oracle's explanation."""
    lines: list[str] = []
    n = len(result.steps)
    for step in result.steps:
        if not step.mismatches:
            continue
        lines.append(
            f"step {step.index + 1} of {n} ({step.note}): {_count(len(step.mismatches), 'mismatch')} "
            f"of {step.probes} probes"
        )
        for m in step.mismatches:
            lines.append(f"  {m.describe()}")
            if m.explanation:
                lines += [f"      {line}" for line in m.explanation.rstrip("\n").splitlines()]
    return "\n".join(lines) + "\n"


def _system_out(result: CaseResult) -> str:
    case = result.case
    lines = [case.description, f"tags: {', '.join(case.tags)}"]
    for step in result.steps:
        lines.append(
            f"step {step.index + 1}: {step.note}: {step.probes} probes, {step.allowed} allowed by the "
            f"oracle, {_count(len(step.mismatches), 'mismatch')}, enforced in {step.seconds * 1000:.1f} ms"
        )
    return "\n".join(lines) + "\n"


def junit_xml(
    suite_name: str, results: Summary | Iterable[CaseResult], properties: Mapping[str, Any] | None = None
) -> str:
    """The JUnit XML document (a <testsuites> with one <testsuite>) as text."""
    if isinstance(results, Summary):
        summary = results
    else:
        summary = Summary(results=list(results))
    props: dict[str, Any] = {"seed": summary.seed, **summary.properties, **(properties or {})}
    counts = summary.counts()
    total_time = sum(r.seconds for r in summary.results)
    attrs = {
        "name": _clean(suite_name),
        "tests": str(counts["cases"]),
        "failures": str(counts["failed"]),
        "errors": str(counts["error"]),
        "skipped": str(counts["skipped"]),
        "time": _seconds(total_time),
    }
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", attrs)
    pnode = ET.SubElement(suite, "properties")
    for key, value in list(props.items()) + [(k, v) for k, v in counts.items()]:
        ET.SubElement(pnode, "property", {"name": _clean(key), "value": _clean(value)})
    for tag, row in summary.by_tag().items():
        ET.SubElement(
            pnode, "property", {"name": f"tag.{_clean(tag)}", "value": f"{row['passed']}/{row['cases']} passed"}
        )
    for result in summary.results:
        case = result.case
        tc = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"conformance.{_clean(case.family)}",
                "name": _clean(case.name),
                "time": _seconds(result.seconds),
            },
        )
        status = result.status
        if status == "skipped":
            ET.SubElement(tc, "skipped", {"message": _clean(result.skipped)})
        elif status == "error":
            node = ET.SubElement(
                tc,
                "error",
                {"message": _clean(result.error.splitlines()[0] if result.error else ""), "type": "RunnerError"},
            )
            node.text = _clean(result.error)
        elif status == "failed":
            bad = [s for s in result.steps if s.mismatches]
            node = ET.SubElement(
                tc,
                "failure",
                {
                    "message": f"{_count(result.mismatches, 'mismatch')} in {len(bad)} of {len(result.steps)} steps",
                    "type": "ConformanceMismatch",
                },
            )
            node.text = _clean(failure_text(result))
        out = ET.SubElement(tc, "system-out")
        out.text = _clean(_system_out(result))
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
