"""`-l` label selectors (equality and set-based) and `--field-selector`, as kubectl parses them (pure).

Reuses spec/selectors.py's LabelSelector so that `get pods -l` selects exactly the pods a
Service or NetworkPolicy with the same selector would.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ..spec.selectors import LabelSelector, Requirement
from .grammar import KubectlError

_SET = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split(text: str) -> list[str]:
    """Commas separate requirements except inside `in (a,b)`."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur]


def label_selector(text: str) -> LabelSelector:
    """`app=web,tier!=db,env in (a,b),!canary,gpu` -> LabelSelector, or KubectlError."""
    equal: list[tuple[str, str]] = []
    reqs: list[Requirement] = []
    for part in _split(text):
        m = _EQ.match(part)
        if m:
            key, op, value = m.groups()
            if op == "!=":
                reqs.append(Requirement(key, "NotIn", (value,)))
            else:
                equal.append((key, value))
            continue
        m = _SET.match(part)
        if not m or (m.group(1) and m.group(3)):
            raise KubectlError(f"error: unable to parse requirement: {part.strip()[:60]!r}")
        bang, key, op, values = m.groups()
        if op:
            vals = tuple(v.strip() for v in values.split(",") if v.strip())
            reqs.append(Requirement(key, "In" if op == "in" else "NotIn", vals))
        else:
            reqs.append(Requirement(key, "DoesNotExist" if bang else "Exists"))
    return LabelSelector(tuple(equal), tuple(reqs))


FIELDS = ("metadata.name", "metadata.namespace", "spec.nodeName", "status.podIP", "status.phase")


def field_selector(text: str) -> Callable[[Mapping[str, Any]], bool]:
    """`spec.nodeName=kind-worker,metadata.name!=x` -> a test on an object's field dict."""
    tests: list[tuple[str, bool, str]] = []
    for part in text.split(","):
        m = re.match(r"^\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise KubectlError(f"error: invalid selector: {part.strip()[:60]!r}; can't understand")
        name, op, value = m.groups()
        if name not in FIELDS:
            raise KubectlError(
                f'Error from server (BadRequest): Unable to find "/v1, Resource=pods" that match '
                f'label selector "", field selector "{text[:80]}": "{name}" is not a known field '
                f"selector: only {', '.join(FIELDS)}"
            )
        tests.append((name, op != "!=", value))
    return lambda fields: all((fields.get(n, "") == v) == eq for n, eq, v in tests)
