"""A policy change patched into the loaded table (netpol/nft_patch.py) leaves the kernel holding
exactly the table a full reload gives: for every consecutive pair of steps of the tiered
conformance cases and of the generated NetworkPolicy suite's multi-step cases, on every node of
the model, `nft -j list table` after the patch equals the listing after loading the new table
whole (element order aside). Each comparison runs in a throwaway network namespace (`unshare
-n`), which vanishes with its process: nothing is left behind."""

from __future__ import annotations

import json
import subprocess

from testbed.conformance.check import step_world
from testbed.conformance.generator import generate_cases
from testbed.conformance.resources import MODEL, TOPOLOGY
from testbed.netpol import compile_cluster
from testbed.netpol.compiler import reconcile_rulesets
from testbed.netpol.nft import render
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests


def _listing(folder, *scripts: str) -> list[dict]:
    """The table as the kernel lists it after running `scripts` in order, in a fresh netns."""
    paths = []
    for i, text in enumerate(scripts):
        path = folder / f"script-{i}.nft"
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    shell = " && ".join(f"nft -f {p}" for p in paths) + " && nft -j list table inet testbed-netpol"
    out = subprocess.run(["unshare", "-n", "sh", "-c", shell], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr[-2000:]
    items = json.loads(out.stdout)["nftables"]
    normal = []
    for item in items:
        ((kind, body),) = item.items()
        if kind == "metainfo":
            continue
        body = {k: v for k, v in body.items() if k != "handle"}
        if "elem" in body:
            body["elem"] = sorted(json.dumps(e, sort_keys=True) for e in body["elem"])
        normal.append({kind: body})
    return sorted(normal, key=lambda x: json.dumps(x, sort_keys=True))


def _pairs(limit: int):
    plan = plan_cluster(load_topology(TOPOLOGY), load_manifests([MODEL]), seed=0)
    base = plan.world
    cases = [c for c in generate_cases(tiered=True)] + [c for c in generate_cases(seed=0) if len(c.steps) > 1]
    for case in cases[:limit]:
        worlds = [step_world(s, base) for s in case.steps]
        for before, after in zip(worlds, worlds[1:]):
            yield case.name, compile_cluster(before), compile_cluster(after)


def test_a_patch_leaves_the_table_a_reload_gives(tmp_path, no_leftovers):
    patched = changed = 0
    for name, before, after in _pairs(limit=60):
        for node, change in reconcile_rulesets(before, after).items():
            if change.action != "patch":
                continue
            patched += 1
            got = _listing(tmp_path, render(before[node]), change.script)
            want = _listing(tmp_path, render(after[node]))
            assert got == want, f"{name} on {node}: the patched table differs from a reload"
            changed += got != _listing(tmp_path, render(before[node]))
    assert patched >= 20 and changed == patched  # the cases do change policies between steps
