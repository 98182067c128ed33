"""The generated conformance suite, case by case, against a golden list (conformance/).

`testbed conformance --seed N` must run the same cases in the same order for the same seed:
the list below pins, for seeds 0 and 7, each case's name, tags and a SHA-256 of what the runner
applies (description, and per step the policies' YAML, the labels and the note; the decoded
policies follow from the YAML, and the decoder has tests of its own).
A change to the generator, the DSL or the tag inference that moves any case shows up here.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from testbed.conformance.generator import generate_cases

from ._golden import check_golden


def _digest(case) -> str:
    steps = [
        {
            "texts": list(s.texts),
            "note": s.note,
            "pods": {k: dict(v) for k, v in sorted(s.pod_labels.items())},
            "namespaces": {k: dict(v) for k, v in sorted(s.namespace_labels.items())},
        }
        for s in case.steps
    ]
    blob = json.dumps({"description": case.description, "steps": steps}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def case_list(seed: int, limit: int | None = None) -> str:
    return "".join(
        f"{i:03d} {c.name} [{','.join(c.tags)}] {_digest(c)}\n"
        for i, c in enumerate(generate_cases(seed=seed, limit=limit))
    )


@pytest.mark.parametrize("seed", [0, 7])
def test_generated_cases_match_the_golden_list(seed):
    check_golden(f"conformance/cases-seed{seed}.txt", case_list(seed))


def test_a_limit_is_a_prefix_of_the_whole_list():
    assert case_list(0, limit=30) == "".join(case_list(0).splitlines(keepends=True)[:30])
