"""Policies as YAML text and back, through the manifest loader's own strict decoding (pure).

The cases write policies as Python data (dsl.py), dump them to YAML and decode them here, so
every case is valid per the API by construction; a case that does not decode is a bug in the
generator and raises at generation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from ..errors import Problem, SpecError
from ..spec import workloads
from ..spec.decode import Doc, Problems, _StrictLoader
from ..spec.model import Manifests, Namespace
from ..spec.netpol import NetworkPolicySpec
from .xyz import model_namespaces


def decode_text(text: str, source: str = "<text>", existing: Iterable[Namespace] = ()) -> Manifests:
    """`load_manifests` for YAML text instead of files: same strict decoding, same messages
    (the source name stands for the file). `existing` namespaces count as already in the
    cluster for the check that every namespaced object's namespace exists."""
    problems = Problems()
    col = workloads._Collector(problems)
    try:
        docs = list(yaml.load_all(text, Loader=_StrictLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError([Problem(source, where, f"malformed YAML: {reason}")]) from None
    for index, raw in enumerate(docs):
        if raw is not None:
            workloads._decode_object(Doc(raw, source, problems, document=f"document {index + 1}"), col)
    manifests = Manifests(
        tuple(col.namespaces),
        tuple(col.pods),
        tuple(col.workloads),
        (source,),
        **{name: tuple(items) for name, items in col.extra.items()},
    )
    known = dataclasses.replace(manifests, namespaces=tuple(existing) + manifests.namespaces)
    workloads._check_namespaces_exist(known, col, problems)
    problems.raise_if_any()
    return manifests


def dump(doc: Mapping[str, Any]) -> str:
    return str(yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=None, width=100))


def decode_policies(texts: Iterable[str], source: str) -> tuple[NetworkPolicySpec, ...]:
    texts = tuple(texts)
    if not texts:
        return ()
    m = decode_text("---\n".join(texts), source, model_namespaces())
    if len(m.policies) != len(texts) or m.namespaces or m.pods or m.workloads:
        raise SpecError([Problem(source, "", "expected NetworkPolicy documents only")])
    return m.policies
