"""Synthetic probe datasets and run folders with known answers, for the analysis and report tests;
md_tables() and table() read the tables of a report.md back.

Three pods a, b (node n1) and c (node n2); nodes n1 and n2. Steps, in order:

- "baseline": all pod pairs over TCP/80, expected connected with the sender's IP. a -> c times
  out (a mismatch); c -> a connects but its server saw 192.168.1.3 (a NAT violation). a -> b
  over UDP/53 is sent 3 times: connected, connected, timeout (a mixed cell, one mismatch).
  Nodes n1 -> a (same node, seen from the gateway 10.244.1.1) and n2 -> a (across nodes,
  seen from 192.168.1.3) over TCP/80, both NAT-free.
- "policy": all pod pairs over TCP/80; c is expected blocked; a -> c times out (as expected),
  b -> c connects (unexpectedly open: a mismatch).
- "service" (with_services=True): 300 requests a -> Service web (port 80) answered 100/100/100
  by a, b, c; 300 requests a -> Service skewed answered 300/0/0 (b and c listed as endpoints
  only in plan.json).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from testbed.experiment.records import COLUMNS, outcome_matches

PODS = {"a": ("n1", "10.244.1.2"), "b": ("n1", "10.244.1.3"), "c": ("n2", "10.244.2.2")}
NODES = {"n1": ("192.168.1.2", "10.244.1.1"), "n2": ("192.168.1.3", "10.244.2.1")}


def row(**kw: Any) -> dict[str, Any]:
    """A full dataset row; the ends, outcome and expectation given, the rest derived."""
    base: dict[str, Any] = {c: "" for c in COLUMNS}
    base.update(
        {
            "run_id": "synthetic",
            "step": "baseline",
            "group": "g",
            "attempt": 0,
            "timestamp": 1000.0,
            "src_kind": "pod",
            "src_namespace": "default",
            "dst_kind": "pod",
            "dst_namespace": "default",
            "service_port": 0,
            "protocol": "TCP",
            "port": 80,
            "method": "socket",
            "outcome": "connected",
            "latency_ms": 1.0,
            "seen_src_port": 0,
            "expected_outcome": "connected",
        }
    )
    base.update(kw)
    src, dst = base["src_name"], base["dst_name"]
    if base["src_kind"] == "pod":
        base["src_node"], base["src_ip"] = PODS[src]
    elif base["src_kind"] == "node":
        base["src_node"], base["src_ip"] = src, NODES[src][0]
        base["src_namespace"] = ""
    if dst in PODS:
        base["dst_node"] = PODS[dst][0]
        if not base["dst_ip"]:
            base["dst_ip"] = PODS[dst][1]
    if "communication" not in kw:
        kind = "pod-to-pod" if base["src_kind"] == "pod" else "node-to-pod"
        where = "same node" if base["src_node"] == base["dst_node"] else "across nodes"
        base["communication"] = f"{kind} ({where})"
    if "expected_src_ips" not in kw:
        if base["src_kind"] == "node":
            host, gateway = NODES[src]
            base["expected_src_ips"] = gateway if base["src_node"] == base["dst_node"] else host
        else:
            base["expected_src_ips"] = base["src_ip"]
    if base["outcome"] == "connected":
        if "seen_src_ip" not in kw:
            base["seen_src_ip"] = base["expected_src_ips"].split()[0] if base["expected_src_ips"] else base["src_ip"]
        if "answered_by" not in kw:
            base["answered_by"] = f"default/{dst}"
    else:
        base["latency_ms"] = kw.get("latency_ms") if base["outcome"] == "refused" else None
        base["seen_src_ip"] = ""
    base["outcome_ok"] = (
        outcome_matches(base["expected_outcome"], base["outcome"]) if base["expected_outcome"] else False
    )
    seen = base["seen_src_ip"]
    base["nat_free"] = (
        (not base["expected_src_ips"] or seen in base["expected_src_ips"].split())
        if base["outcome"] == "connected" and seen
        else None
    )
    return base


def pairs() -> list[tuple[str, str]]:
    return [(s, d) for s in sorted(PODS) for d in sorted(PODS) if s != d]


def synthetic_rows(
    with_services: bool = True, latency_scale: float = 1.0, variant: str = "a", throughput: bool = False
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    lat = iter([0.5 + 0.25 * i for i in range(1000)])
    for s, d in pairs():
        kw: dict[str, Any] = {}
        if (s, d) == ("a", "c"):
            kw = {"outcome": "timeout"}
        if (s, d) == ("c", "a"):
            kw = {"seen_src_ip": "192.168.1.3"}
        rows.append(
            row(step="baseline", group="pods", src_name=s, dst_name=d, latency_ms=next(lat) * latency_scale, **kw)
        )
    for attempt, outcome in enumerate(["connected", "connected", "timeout"]):
        rows.append(
            row(
                step="baseline",
                group="udp",
                attempt=attempt,
                src_name="a",
                dst_name="b",
                protocol="UDP",
                port=53,
                outcome=outcome,
                latency_ms=next(lat) * latency_scale,
            )
        )
    for node in ("n1", "n2"):
        rows.append(
            row(
                step="baseline",
                group="nodes",
                src_kind="node",
                src_name=node,
                dst_name="a",
                latency_ms=next(lat) * latency_scale,
            )
        )
    for s, d in pairs():
        expected = "blocked" if d == "c" else "connected"
        outcome = "timeout" if (s, d) == ("a", "c") else "connected"
        if variant == "b" and (s, d) == ("b", "c"):
            outcome = "timeout"  # the policy hole closed in run b
        rows.append(
            row(
                step="policy",
                group="pods",
                src_name=s,
                dst_name=d,
                expected_outcome=expected,
                outcome=outcome,
                latency_ms=next(lat) * latency_scale,
            )
        )
    if with_services:
        for i in range(300):
            rows.append(
                row(
                    step="service",
                    group="svc-web",
                    attempt=i,
                    src_name="a",
                    dst_name="",
                    dst_ip="10.96.0.20",
                    service="web",
                    service_port=80,
                    port=80,
                    communication="pod-to-service",
                    answered_by=f"default/{'abc'[i % 3]}",
                    latency_ms=1.0 + (i % 7) * latency_scale,
                )
            )
        for i in range(300):
            rows.append(
                row(
                    step="service",
                    group="svc-skewed",
                    attempt=i,
                    src_name="a",
                    dst_name="",
                    dst_ip="10.96.0.21",
                    service="skewed",
                    service_port=80,
                    port=80,
                    communication="pod-to-service",
                    answered_by="default/a",
                    latency_ms=2.0,
                )
            )
    if throughput:
        for r in rows:
            r["throughput_mbps"] = 900.0 if r["outcome"] == "connected" and r["protocol"] == "TCP" else None
    return rows


def write_run(
    path: str,
    rows: list[dict[str, Any]],
    run_id: str = "synthetic-a",
    seed: int = 7,
    services: bool = True,
    csv_only: bool = False,
    meta: dict[str, Any] | None = None,
) -> str:
    """A results folder like experiment/results.write_results writes it (no root)."""
    import pandas as pd

    os.makedirs(path, exist_ok=True)
    extra = sorted({k for r in rows for k in r} - set(COLUMNS))
    frame = pd.DataFrame(rows, columns=list(COLUMNS) + extra)
    frame["run_id"] = run_id
    frame["nat_free"] = frame["nat_free"].astype("boolean")
    frame.to_csv(os.path.join(path, "probes.csv"), index=False)
    if not csv_only:
        frame.to_parquet(os.path.join(path, "probes.parquet"), index=False)
    plan = {"pods": [{"name": n, "namespace": "default", "node": node, "ip": ip} for n, (node, ip) in PODS.items()]}
    if services:
        plan["services"] = [
            {"name": "web", "namespace": "default", "endpoints": ["default/a", "default/b", "default/c"]},
            {"name": "skewed", "namespace": "default", "endpoints": [{"pod": "a"}, {"ip": "10.244.1.3"}, "default/c"]},
        ]
    passed = bool(rows) and all(r["outcome_ok"] and r["nat_free"] is not False for r in rows)
    data = {
        "run_id": run_id,
        "passed": passed,
        "started": 1795320824.5,
        "seed": seed,
        "experiment": {"name": "synthetic", "file": "experiments/synthetic.yaml", "description": "Known answers."},
        "inputs": {"experiments/synthetic.yaml": "0" * 64, "manifests/app.yaml": "1" * 64},
        "cluster": {"name": "kind", "nodes": 2, "pods": 3, "routing": "host-gw"},
        "probes": len(rows),
        "timings": {"build": 0.5, "teardown": 0.25, "step:baseline": 0.1},
        "environment": {"kernel": "6.1", "python": "3.11", "pandas": pd.__version__},
        "warnings": [],
        "notes": [],
        "reproduce": "testbed run experiments/synthetic.yaml",
    }
    data.update(meta or {})
    for name, content in (("run.json", data), ("plan.json", plan), ("schema.json", COLUMNS)):
        with open(os.path.join(path, name), "w", encoding="utf-8") as handle:
            json.dump(content, handle, indent=2, sort_keys=True)
    return path


# -- reading report.md back -------------------------------------------------------------------


def md_tables(text: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """(the heading or bold line above, header, rows) of every Markdown table."""
    out, title, lines, i = [], "", text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            title = line.lstrip("#").strip()
        elif line.startswith("**") and line.endswith("**") and not line.startswith("**Verdict"):
            title = line.strip("*")
        if line.startswith("|") and i + 1 < len(lines) and re.fullmatch(r"\|(-+:?\|)+", lines[i + 1]):
            header = _cells(line)
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            out.append((title, header, rows))
            continue
        i += 1
    return out


def _cells(line: str) -> list[str]:
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def table(text: str, title: str) -> list[dict[str, str]]:
    found = [(h, r) for t, h, r in md_tables(text) if t == title]
    assert found, f"no table under {title!r}"
    header, rows = found[0]
    return [dict(zip(header, r)) for r in rows]
