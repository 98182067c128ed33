"""Faults and timers from YAML (an experiment's `fault` / `recover` actions and `timers`) and
from the shell's `fault` command words (pure).

```yaml
spec:
  timers: {timeScale: 0.01, nodeMonitorGracePeriod: 40, tolerationSeconds: 300}
  steps:
    - actions: [{fault: {kind: loss, node: kind-worker, percent: 20}}]
    - actions: [{recover: {kind: loss, node: kind-worker}}]   # or recover: all
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..spec.decode import Doc
from .model import KINDS, NETEM_KINDS, NETEM_MESSAGE, TARGETS, Fault, Recover, Timers, check_timers

FAULT_KEYS = ("kind", "node", "host", "rack", "pod", "percent", "rate", "mtu", "evict")
TIMER_KEYS = {
    "nodeMonitorGracePeriod": "node_monitor_grace_period",
    "tolerationSeconds": "toleration_seconds",
    "timeScale": "time_scale",
}


def decode_fault(doc: Doc, recovering: bool = False) -> Fault | None:
    """A `fault:` mapping (or a `recover:` one, which names the kind and target only)."""
    if not doc.is_mapping():
        return None
    doc.check_keys(("kind", "node", "host", "rack", "pod") if recovering else FAULT_KEYS)
    kind = doc.str("kind", required=True)
    if kind is None:
        return None
    if kind in NETEM_KINDS:
        doc.error(NETEM_MESSAGE.format(kind=kind), "kind")
        return None
    if kind not in TARGETS:
        doc.error(f"unknown fault kind {kind[:40]!r} (known: {', '.join(KINDS)})", "kind")
        return None
    return Fault(
        kind,
        node=doc.str("node", default="") or "",
        host=doc.str("host", default="") or "",
        rack=doc.str("rack", default="") or "",
        pod=doc.str("pod", default="") or "",
        percent=doc.int("percent", default=0, minimum=1, maximum=100) or 0,
        rate=doc.str("rate", default="") or "",
        mtu=doc.int("mtu", default=0, minimum=576, maximum=9000) or 0,
        evict=bool(doc.bool("evict", default=True)),
    )


def decode_recover(doc: Doc) -> Recover | None:
    if doc.value == "all":
        return Recover(None)
    fault = decode_fault(doc, recovering=True)
    return Recover(fault) if fault is not None else None


def decode_timers(doc: Doc | None) -> Timers:
    if doc is None:
        return Timers()
    doc.check_keys(tuple(TIMER_KEYS))
    values: dict[str, float] = {}
    for key, attr in TIMER_KEYS.items():
        node = doc.field(key)
        if not node.present():
            continue
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value > 86400:
            node.error("expected seconds (a number in [0, 86400])")
            continue
        values[attr] = float(value)
    timers = Timers(**values)
    for key, message in check_timers(timers):
        doc.error(message, key)
    return timers


def parse_words(words: Sequence[str]) -> tuple[Fault | None, str]:
    """The shell's `fault KIND key=value...` (e.g. `fault loss node=kind-worker percent=20`):
    (the fault, "") or (None, a one-line error)."""
    if not words:
        return None, f"usage: fault KIND key=value... (kinds: {', '.join(KINDS)})"
    kind, fields = words[0], {}
    if kind in NETEM_KINDS:
        return None, NETEM_MESSAGE.format(kind=kind)
    if kind not in TARGETS:
        return None, f"unknown fault kind {kind[:40]!r} (known: {', '.join(KINDS)})"
    for word in words[1:]:
        key, eq, value = word.partition("=")
        if not eq or key not in FAULT_KEYS[1:]:
            return None, f"expected key=value with key one of {', '.join(FAULT_KEYS[1:])}, got {word[:40]!r}"
        fields[key] = value
    typed: dict[str, Any] = {}
    for key, value in fields.items():
        if key in ("percent", "mtu"):
            if not value.isdigit() or len(value) > 6:
                return None, f"{key}: expected a number, got {value[:20]!r}"
            typed[key] = int(value)
        elif key == "evict":
            if value not in ("true", "false"):
                return None, "evict: expected true or false"
            typed[key] = value == "true"
        else:
            typed[key] = value
    return Fault(kind, **typed), ""
