"""Validation of label maps and label selectors as they appear in manifests; pure."""

from __future__ import annotations

from collections.abc import Mapping

from .decode import Doc
from .names import label_key_error, label_value_error
from .selectors import OPERATORS, LabelSelector, Requirement


def check_labels(doc: Doc, labels: Mapping[str, str]) -> None:
    """Report every invalid label key or value under `doc` (a labels/nodeSelector field)."""
    for key, value in labels.items():
        err = label_key_error(key) or label_value_error(value)
        if err:
            doc.error(err, key)


def decode_selector(doc: Doc | None) -> LabelSelector | None:
    """Decode a metav1.LabelSelector {matchLabels, matchExpressions}; None if absent."""
    if doc is None:
        return None
    doc.check_keys(("matchLabels", "matchExpressions"))
    labels = doc.string_map("matchLabels")
    check_labels(doc.field("matchLabels"), labels)
    reqs: list[Requirement] = []
    for edoc in doc.items("matchExpressions"):
        if not edoc.is_mapping():
            continue
        key, op, values = requirement_fields(edoc)
        if op is not None and op not in OPERATORS:
            edoc.error(f"operator must be one of {', '.join(OPERATORS)}, got {op!r}", "operator")
            continue
        if op in ("In", "NotIn") and not values:
            edoc.error(f"operator {op} needs a non-empty values list", "values")
        if op in ("Exists", "DoesNotExist") and values:
            edoc.error(f"operator {op} takes no values", "values")
        if key is not None and op is not None:
            reqs.append(Requirement(key, op, tuple(values)))
    return LabelSelector(tuple(sorted(labels.items())), tuple(reqs))


def requirement_fields(doc: Doc) -> tuple[str | None, str | None, list[str]]:
    """Key, operator and values of one {key, operator, values} requirement (a label selector's
    matchExpressions, a node selector term's matchExpressions and matchFields)."""
    doc.check_keys(("key", "operator", "values"))
    key = doc.str("key", required=True)
    op = doc.str("operator", required=True)
    values: list[str] = []
    for vdoc in doc.items("values"):
        if isinstance(vdoc.value, str):
            values.append(vdoc.value)
        else:
            vdoc.error(f"expected a string, got {vdoc.value!r}")
    return key, op, values
