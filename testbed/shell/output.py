"""kubectl's output formats for `get` (pure): tables (with -A's NAMESPACE, -o wide,
--show-labels, TYPE/NAME prefixes for several types), -o name|yaml|json|jsonpath=|custom-columns=,
and --sort-by.

Sits between shell/objects.py (the records) and shell/kubectl.py (the verb).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import yaml

from ..views import table
from .grammar import QUALIFIED, KubectlError
from .objects import HEADERS, Obj

Age = Callable[[Obj], str]


def _path(expr: str) -> list[str | int]:
    """`.items[*].metadata.name` / `{.metadata.labels['app']}` -> steps ('*' = every element)."""
    steps: list[str | int] = []
    for m in re.finditer(r"\.([A-Za-z0-9_-]+)|\[\*\]|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]|\.\.", expr):
        if m.group(0) == "[*]":
            steps.append("*")
        elif m.group(2) is not None:
            steps.append(int(m.group(2)))
        else:
            steps.append(m.group(1) or m.group(3) or m.group(4) or "")
    return steps


def lookup(data: Any, expr: str) -> list[Any]:
    """Every value `expr` reaches in `data` (a tiny JSONPath: dots, [N], [*], ['key'])."""
    values = [data]
    for step in _path(expr.strip().lstrip("$")):
        nxt: list[Any] = []
        for v in values:
            if step == "*":
                nxt.extend(v if isinstance(v, list) else (v.values() if isinstance(v, dict) else []))
            elif isinstance(step, int):
                if isinstance(v, list) and -len(v) <= step < len(v):
                    nxt.append(v[step])
            elif isinstance(v, dict) and step in v:
                nxt.append(v[step])
            elif isinstance(v, list):  # kubectl's `.items.metadata.name` shorthand
                nxt.extend(x[step] for x in v if isinstance(x, dict) and step in x)
        values = nxt
    return values


def _scalar(v: Any) -> str:
    return json.dumps(v) if isinstance(v, (dict, list)) else str(v)


def jsonpath(data: Any, template: str) -> str:
    """kubectl's -o jsonpath=TEMPLATE: `{...}` expressions in literal text; values space-separated."""
    template = template.strip("'\"")
    out, pos = [], 0
    for m in re.finditer(r"\{([^{}]*)\}", template):
        out.append(template[pos : m.start()])
        expr = m.group(1).strip()
        if expr.startswith("range") or expr == "end":
            raise KubectlError("error: jsonpath {range} is not supported by this shell; use -o custom-columns=")
        if expr.startswith((".", "$", "[")):
            out.append(" ".join(_scalar(v) for v in lookup(data, expr)))
        else:  # a literal: {"\n"}, {'\t'}, or {\n} once the shell's quotes are gone
            out.append(expr.strip("'\""))
        pos = m.end()
    out.append(template[pos:])
    return "".join(out).replace("\\n", "\n").replace("\\t", "\t")


def custom_columns(objs: list[Obj], spec: str) -> str:
    cols = []
    for part in spec.split(","):
        head, colon, expr = part.partition(":")
        if not colon or not expr:
            raise KubectlError(f"error: custom-columns format specified but no custom columns given: {part[:40]!r}")
        cols.append((head, expr))
    rows = [[h for h, _ in cols]]
    for o in objs:
        body = o.body()
        rows.append([",".join(_scalar(v) for v in lookup(body, e)) or "<none>" for _, e in cols])
    return table(rows)


def sort(objs: list[Obj], expr: str) -> list[Obj]:
    def key(o: Obj) -> tuple[int, float, str | tuple[int | str, ...]]:
        vals = lookup(o.body(), expr.strip("{}"))
        v = vals[0] if vals else ""
        if isinstance(v, (int, float)):
            return (0, v, "")
        parts = re.split(r"(\d+)", str(v))  # 10.244.1.10 after 10.244.1.9, as numbers sort
        return (1, 0, tuple((int(p) if p.isdigit() else p) for p in parts))

    return sorted(objs, key=key)


def render(
    groups: list[tuple[str, list[Obj]]],
    output: str,
    all_ns: bool,
    show_labels: bool,
    age: Age,
    prefix: bool,
    single: bool = False,
) -> str:
    """The text `kubectl get` prints for these objects, type by type (`single`: one object asked
    for by name, which -o yaml|json prints as itself rather than in a List)."""
    objs = [o for _, g in groups for o in g]
    if output == "name":
        return "\n".join(f"{QUALIFIED[o.plural]}/{o.name}" for o in objs)
    if output in ("yaml", "json") or output.startswith(("jsonpath=", "jsonpath-as-json=")):
        data = (
            objs[0].body()
            if single and len(objs) == 1
            else {
                "apiVersion": "v1",
                "kind": "List",
                "items": [o.body() for o in objs],
                "metadata": {"resourceVersion": ""},
            }
        )
        if output == "yaml":
            text: str = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)  # PyYAML is untyped here
            return text.rstrip()
        if output == "json":
            return json.dumps(data, indent=4)
        return jsonpath(data, output.partition("=")[2])
    if output.startswith("custom-columns="):
        return custom_columns(objs, output.partition("=")[2])
    if output not in ("", "wide"):
        raise KubectlError(
            f'error: unable to match a printer suitable for the output format "{output[:40]}", '
            "allowed formats are: custom-columns,json,jsonpath,name,wide,yaml"
        )
    texts = []
    for plural, g in groups:
        if not g:
            continue
        head, wide = HEADERS[plural]
        rows = [
            (["NAMESPACE"] if all_ns and plural not in ("nodes", "namespaces") else [])
            + head
            + (wide if output == "wide" else [])
            + (["LABELS"] if show_labels else [])
        ]
        for o in g:
            name = f"{QUALIFIED[plural]}/{o.name}" if prefix else o.name
            cols = [age(o) if c == "{age}" else c for c in o.cols]
            rows.append(
                ([o.namespace] if all_ns and plural not in ("nodes", "namespaces") else [])
                + [name]
                + cols
                + (o.wide if output == "wide" else [])
                + ([",".join(f"{k}={v}" for k, v in sorted(o.labels.items())) or "<none>"] if show_labels else [])
            )
        texts.append(table(rows))
    return "\n\n".join(texts)
