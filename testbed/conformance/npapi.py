"""The Network Policy API's own conformance tests as tiered cases on the x/y/z model; pure.

data/npapi.yaml holds them language-neutral (written by scripts/npapi_port.py from
kubernetes-sigs/network-policy-api's conformance/tests/*.go and conformance/base/, restated on
the model: houses -> namespaces, agnhost ports -> 80/81, pods' /32s -> the model's pinned
addresses): per case, steps with the policies in force, namespace labels, and the pokes the
upstream test asserts at that step. `npapi_cases` turns them into conformance Cases (the runner
measures each step's whole 486-probe truth table with real packets against the oracle);
`npapi_pokes` gives the upstream assertions, which a unit test holds the oracle to, so the
cases measured are the upstream tests' own verdicts, not only self-consistent.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml

from .decode import decode_text, dump
from .resources import data_path
from .steps import Case, Step
from .xyz import SOURCE, model_namespaces

DATA = data_path("npapi.yaml")


@dataclass(frozen=True)
class Poke:
    """One assertion of an upstream test: from, to, port, protocol and whether it connects."""

    case: str
    step: int
    subtests: tuple[str, ...]
    src: str
    dst: str
    port: int
    protocol: str
    connected: bool


def _load() -> list[dict[str, Any]]:
    with open(DATA, encoding="utf-8") as handle:
        cases: list[dict[str, Any]] = yaml.safe_load(handle)["cases"]
    return cases


def npapi_cases() -> list[Case]:
    """Every ported upstream test as a Case (tag `tiered`), decoded through the manifest loader."""
    return list(_cases())


@lru_cache(maxsize=1)
def _cases() -> tuple[Case, ...]:
    """Decoded once per process: the data ship with the package and do not change."""
    out = []
    for raw in _load():
        source = f"{SOURCE}/{raw['name']}.yaml"
        steps = []
        for s in raw["steps"]:
            texts = [dump(d) for d in s["policies"]]
            m = decode_text("---\n".join(texts), source, model_namespaces())
            labels = {ns: dict(v) for ns, v in (s.get("namespaceLabels") or {}).items()}
            steps.append(
                Step(
                    m.policies,
                    (),
                    namespace_labels=labels,
                    note=s["note"],
                    tiers=m.cluster_policies,
                    tier_texts=tuple(texts),
                )
            )
        description = (
            f"{raw['upstream']}, restated on the model ({', '.join(f'{h}={n}' for h, n in raw['houses'].items())})."
        )
        out.append(Case(raw["name"], description, ("tiered",), tuple(steps)))
    return tuple(out)


def npapi_pokes() -> list[Poke]:
    """The upstream tests' assertions, restated, per case and step."""
    return [
        Poke(raw["name"], i, tuple(s["subtests"]), src, dst, int(port), proto, bool(want))
        for raw in _load()
        for i, s in enumerate(raw["steps"])
        for src, dst, proto, port, want in s["pokes"]
    ]
