"""Write a run's results folder: dataset, schema, plan, metadata and a short summary.

results/<run-id>/: run.json (what ran, with hashes, seed, versions and timings, enough to
reproduce it), plan.json, probes.csv and probes.parquet (the tidy dataset), schema.json
(its columns), summary.md (a table a person reads at a glance). The full analysis and
HTML report pipeline builds on these files.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from .. import __version__
from ..emu.runner import Runner
from ..errors import KernelError
from .records import COLUMNS, summarize


def file_sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def new_run_id(name: str, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{name}"


def unique_run_dir(root: str, run_id: str) -> tuple[str, str]:
    """Create root/<run-id>, or root/<run-id>-2, -3, ... : (its path, its final run id).

    Created here, at the start of a run, with mkdir, which fails if the folder exists: two
    runs started in the same second (the run id has 1 s resolution), even in two processes,
    each get a folder of their own, never one another's.
    """
    os.makedirs(root, exist_ok=True)
    n = 1
    while True:
        name = run_id if n == 1 else f"{run_id}-{n}"
        path = os.path.join(root, name)
        try:
            os.mkdir(path)
            return path, name
        except FileExistsError:
            n += 1


@contextmanager
def discarded_if_empty(run_dir: str) -> Iterator[None]:
    """If the block fails (an error, an interrupt), remove the run's folder when nothing was
    written to it yet; a folder with results (e.g. the steps' packet captures) stays."""
    try:
        yield
    except BaseException:
        try:
            os.rmdir(run_dir)
        except OSError:
            pass
        raise


def _version(argv: Sequence[str]) -> str:
    try:
        out = Runner().run(argv, check=False, timeout=5)
        return (out.out or out.err).strip().splitlines()[0]
    except (KernelError, IndexError):
        return "unknown"


def environment() -> dict[str, str]:
    versions = {"testbed": __version__, "python": platform.python_version(), "kernel": platform.release()}
    try:
        import mininet.net  # optional here: a results folder can be written without Mininet

        versions["mininet"] = getattr(mininet.net, "VERSION", "unknown")
    except ImportError:
        versions["mininet"] = "not installed"
    # the installed distributions' versions (what `import X; X.__version__` says), read from their
    # metadata: importing matplotlib and scapy only to ask cost 0.2-0.8 s of every `testbed run`
    for mod, dist in (("pandas", "pandas"), ("scapy", "scapy"), ("yaml", "PyYAML"), ("matplotlib", "matplotlib")):
        try:
            versions[mod] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[mod] = "unknown"
    versions["iproute2"] = _version(["ip", "-V"])
    return versions


def write_results(
    run_dir: str, meta: Mapping[str, Any], plan: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
) -> None:
    import pandas as pd  # heavy: only when writing results

    os.makedirs(run_dir, exist_ok=True)  # made by unique_run_dir; a caller may also name its own
    frame = pd.DataFrame(list(rows), columns=list(COLUMNS))
    frame["nat_free"] = frame["nat_free"].astype("boolean")
    frame.to_csv(os.path.join(run_dir, "probes.csv"), index=False)
    frame.to_parquet(os.path.join(run_dir, "probes.parquet"), index=False)
    _dump(os.path.join(run_dir, "schema.json"), COLUMNS)
    _dump(os.path.join(run_dir, "plan.json"), plan)
    _dump(os.path.join(run_dir, "run.json"), meta)
    with open(os.path.join(run_dir, "summary.md"), "w", encoding="utf-8") as handle:
        handle.write(summary_markdown(meta, rows))


def _dump(path: str, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True, default=str)
        handle.write("\n")


def summary_markdown(meta: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [f"# {meta['experiment']['name']} — run {meta['run_id']}", ""]
    if meta["experiment"].get("description"):
        lines += [meta["experiment"]["description"], ""]
    total = len(rows)
    ok = sum(bool(r["outcome_ok"]) for r in rows)
    nat_bad = [r for r in rows if r["nat_free"] is False]
    pending = f" {meta['cluster']['pending']} pod(s) Pending (see warnings)." if meta["cluster"].get("pending") else ""
    if meta.get("aborted"):  # a helper died or a capture failed: the cause, not the probes it spoilt
        lines += [
            f"**Verdict: ABORTED** — {meta['aborted']}{pending}",
            "",
            f"Before it stopped: {ok}/{total} probes as expected; {len(nat_bad)} unexpected source address(es).",
        ]
    else:
        lines += [
            f"**Verdict: {'PASS' if meta['passed'] else 'FAIL'}** — {ok}/{total} probes as expected; "
            f"{len(nat_bad)} NAT violation(s) (server saw an address other than the expected one)." + pending
        ]
    lines += [
        "",
        f"Cluster: {meta['cluster']['nodes']} nodes, {meta['cluster']['pods']} pods, routing "
        f"{meta['cluster']['routing']}; seed {meta['seed']}; built in {meta['timings'].get('build', 0):.2f} s.",
        "",
        "| step | communication | protocol | probes | connected | as expected | source as expected |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for t in summarize(rows):
        nat = f"{t['nat_free']}/{t['nat_checked']}" if t["nat_checked"] else "—"
        lines.append(
            f"| {t['step']} | {t['communication']} | {t['protocol']} | {t['probes']} | "
            f"{t['connected']} | {t['as_expected']} | {nat} |"
        )
    bad = [r for r in rows if not r["outcome_ok"] or r["nat_free"] is False]
    if bad:
        lines += [
            "",
            "## Unexpected results",
            "",
            "| step | from | to | protocol/port | outcome | expected | server saw | expected source |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in bad[:200]:
            lines.append(
                f"| {r['step']} | {r['src_kind']} {r['src_name']} ({r['src_ip']}) | "
                f"{r['dst_name']} ({r['dst_ip']}) | {r['protocol']}/{r['port']} | {r['outcome']} | "
                f"{r['expected_outcome']} | {r['seen_src_ip'] or '—'} | {r['expected_src_ips'] or 'any'} |"
            )
        if len(bad) > 200:
            lines.append(f"| … {len(bad) - 200} more in probes.csv | | | | | | | |")
    if meta.get("changes"):
        lines += [
            "",
            "## Changes",
            "",
            "| step | action | pods added | pods removed | applied in |",
            "|---|---|---:|---:|---:|",
        ]
        for c in meta["changes"]:
            lines.append(f"| {c['step']} | {c['action']} | {c['added']} | {c['removed']} | {c['seconds']:.3f} s |")
    if meta.get("during"):
        lines += ["", "## Probes during changes", "", "| step | rounds | probes | failed |", "|---|---:|---:|---:|"]
        for d in meta["during"]:
            lines.append(f"| {d['step']} | {d['rounds']} | {d['probes']} | {d['failed']} |")
    if meta.get("captures"):
        lines += [
            "",
            "## Packet captures",
            "",
            "| step | at | interface | filter | packets | file |",
            "|---|---|---|---|---:|---|",
        ]
        for c in meta["captures"]:
            lines.append(
                f"| {c['step']} | {c['at']} | {c['interface']} | {c['filter'] or '—'} | {c['packets']} | {c['file']} |"
            )
    if meta.get("warnings"):
        lines += ["", "## Plan warnings", ""] + [f"- {w}" for w in meta["warnings"]]
    lines += [
        "",
        "Files: probes.csv / probes.parquet (one row per probe; columns in schema.json), plan.json, "
        "run.json (inputs' hashes, versions, timings).",
        "",
    ]
    return "\n".join(lines)
