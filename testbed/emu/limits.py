"""Kernel-wide capacity limits an emulation of many pods needs, and giving them back (emu/).

The ARP/neighbour table is one kernel table shared by every network namespace, capped by
net.ipv4.neigh.default.gc_thresh3 (1,024 by default) in the VM's own namespace. Pods of one
node on one bridge resolve each other directly (bridge CNI, scenario 001), so an all-pairs
matrix among 100 pods needs a few thousand entries: past the cap the kernel refuses new
ones and probes time out for no network reason. We raise the cap to what the plan can need;
it is a capacity limit, not behaviour, and it touches no address or route of the VM.

These values are host-wide and shared by concurrent instances, so the VM must be left as
found without pulling the rug from under another instance: one record,
/run/testbed/.sysctl.json (under the registry lock, ledger.py), keeps each value's original, what we last wrote,
and every holder (instance tag, owner pid and start time, what it needs). A value is always
max(original, what live holders need); when the last live holder leaves (its teardown,
`testbed clean`, or `clean --stale` once its owner is dead) the originals come back. A value
somebody else changed since we wrote it is never lowered.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..plan.model import Plan
from . import ledger as ledgers
from . import signals

PROC_SYS = "/proc/sys"
RECORD = ".sysctl.json"
_KEYS = {f"gc_thresh{n}": f"net/ipv4/neigh/default/gc_thresh{n}" for n in (1, 2, 3)}
_SHARE = {"gc_thresh3": 1.0, "gc_thresh2": 0.75, "gc_thresh1": 0.25}


def neighbour_entries_needed(plan: Plan) -> int:
    """Worst case: every pod knows every pod of its node and its gateway; nodes know all."""
    per_node: dict[str, int] = {}
    for pod in plan.pods:
        per_node[pod.node] = per_node.get(pod.node, 0) + 1
    pods = sum(n * (n + 1) for n in per_node.values())  # pod -> same-node pods + gateway; node -> its pods
    underlay = (len(plan.nodes) + len(plan.externals)) ** 2
    return pods + underlay


def targets(plan: Plan) -> dict[str, int]:
    """gc_thresh1..3 so that the plan fits twice over (1 is where garbage collection starts)."""
    need = 2 * neighbour_entries_needed(plan)
    return {key: int(need * share) for key, share in _SHARE.items()}


def _read(key: str) -> int | None:
    try:
        with open(os.path.join(PROC_SYS, _KEYS[key]), encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def _write(key: str, value: int) -> bool:
    try:
        with open(os.path.join(PROC_SYS, _KEYS[key]), "w", encoding="ascii") as handle:
            handle.write(str(value))
        return True
    except OSError:
        return False


@contextmanager
def _record() -> Iterator[dict[str, Any]]:
    """The shared record, read and written back under its lock (a signal cannot cut in between
    a value written and its record: the shield acts on it afterwards)."""
    with signals.shielded(signals.NOTED_CRITICAL):
        with _locked_record() as rec:
            yield rec


@contextmanager
def _locked_record() -> Iterator[dict[str, Any]]:
    path = os.path.join(ledgers.STATE_DIR, RECORD)
    with ledgers.registry():
        try:
            with open(path, encoding="utf-8") as handle:
                rec = json.load(handle)
            if not isinstance(rec, dict):
                raise ValueError
        except (OSError, ValueError):
            rec = {}
        rec.setdefault("original", {})
        rec.setdefault("written", {})
        rec.setdefault("holders", {})
        yield rec
        if rec["holders"] or any(rec["written"].values()):
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(rec, handle, sort_keys=True)
            os.replace(tmp, path)
        else:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _settle(rec: dict[str, Any]) -> dict[str, int]:
    """Bring each value to max(original, live holders' needs); returns what was written."""
    holders = rec["holders"]
    for tag in [t for t, h in holders.items() if not ledgers.owner_alive(int(h.get("owner", 0)), h.get("owner_start"))]:
        del holders[tag]  # a dead owner needs nothing any more
    changed: dict[str, int] = {}
    for key in _KEYS:
        original = rec["original"].get(key)
        current = _read(key)
        if original is None or current is None:
            continue
        want = max([original] + [int(h["need"].get(key, 0)) for h in holders.values()])
        ours = rec["written"].get(key) == current  # nobody changed it since we wrote it
        if want > current or (ours and want < current):
            if _write(key, want):
                changed[key] = want
                rec["written"][key] = want
        if not holders:
            rec["original"].pop(key, None)
            rec["written"].pop(key, None)
    return changed


def hold(tag: str, owner: int, owner_start: int | None, plan: Plan) -> dict[str, int]:
    """Raise what `plan` needs (never lowering anything) for instance `tag`; returns what
    was written. Called again with a bigger plan, the instance's needs grow."""
    need = targets(plan)
    with _record() as rec:
        if not rec["holders"] and all((_read(key) or 0) >= value for key, value in need.items()):
            return {}  # nobody raised anything and the VM's values suffice: nothing to record
        for key in _KEYS:
            if key not in rec["original"]:
                current = _read(key)
                if current is not None:
                    rec["original"][key] = current
        mine = rec["holders"].setdefault(tag, {"owner": owner, "owner_start": owner_start, "need": {}})
        for key, value in need.items():
            mine["need"][key] = max(value, int(mine["need"].get(key, 0)))
        return _settle(rec)


def release(tag: str) -> dict[str, int]:
    """Instance `tag` no longer needs anything; what no live holder needs goes back."""
    with _record() as rec:
        rec["holders"].pop(tag, None)
        return _settle(rec)


def restore(everyone: bool = False) -> dict[str, int]:
    """Forget dead holders (or all of them: `testbed clean`) and restore what nobody needs."""
    if not os.path.exists(os.path.join(ledgers.STATE_DIR, RECORD)):
        return {}
    with _record() as rec:
        if everyone:
            rec["holders"].clear()
        return _settle(rec)
