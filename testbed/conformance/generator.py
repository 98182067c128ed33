"""The generated NetworkPolicy conformance cases on the classic x/y/z model; pure.

    cases = generate_cases(seed=0)            # ~330 cases, deterministic for a seed
    case.steps[i].policies                    # every NetworkPolicySpec in force at step i
    case.steps[i].pod_labels / namespace_labels   # full label sets that differ from the model
    case.steps[i].yaml                        # the same policies as YAML documents

Systematic families (families.py, the same for every seed), then random combinations and
sequences drawn from their policies (which the seed picks); each draft is decoded (decode.py)
and tagged (tags.py) into a Case (steps.py).
"""

from __future__ import annotations

import random
from typing import Any

from ..spec.netpol import NetworkPolicySpec
from .decode import decode_policies, dump
from .dsl import Draft, Seq, policy_key
from .families import SYSTEMATIC
from .steps import Case, Step
from .tags import infer_tags
from .tiered import tiered_cases
from .xyz import NAMESPACES, PODS, SOURCE

_DECODED: dict[tuple[str, str], NetworkPolicySpec] = {}


def build_case(draft: Draft) -> Case:
    source = f"{SOURCE}/{draft.name}.yaml"
    steps = []
    for docs, pod_labels, ns_labels, note in draft.seq.steps:
        texts = tuple(dump(d) for d in docs)
        specs = []
        for text in texts:
            cached = _DECODED.get((source, text))
            if cached is None:
                cached = _DECODED[(source, text)] = decode_policies([text], source)[0]
            specs.append(cached)
        steps.append(Step(tuple(specs), texts, pod_labels, ns_labels, note))
    steps_t = tuple(steps)
    tags = (draft.family,) + tuple(t for t in infer_tags(steps_t) if t != draft.family)
    return Case(draft.name, draft.description, tags, steps_t)


RANDOM_SINGLE = 60
RANDOM_STEPS = 20
POD_LABEL_CHOICES = (("tier", "web"), ("tier", "db"), ("tier", None), ("pod", "a"), ("pod", "b"), ("role", "admin"))
NS_LABEL_CHOICES = (("team", "red"), ("team", "blue"), ("team", None), ("ns", "y"), ("env", "prod"))


def _catalogue(drafts: list[Draft]) -> list[dict[str, Any]]:
    """Every policy of the single-step systematic cases, each once (by namespace and name)."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for d in drafts:
        if len(d.seq.steps) != 1:
            continue
        for doc in d.seq.steps[0][0]:
            key = policy_key(doc)
            if key not in seen:
                seen[key] = doc
    return [seen[k] for k in sorted(seen)]


def fam_random(seed: int, catalogue: list[dict[str, Any]], taken: set[Any]) -> list[Draft]:
    rng = random.Random(f"conformance-{seed}")
    out: list[Draft] = []
    tries = 0
    while len(out) < RANDOM_SINGLE and tries < 100 * RANDOM_SINGLE:
        tries += 1
        docs = rng.sample(catalogue, rng.choice((2, 2, 3)))
        key = tuple(sorted(policy_key(d) for d in docs))
        if len(set(key)) < len(key) or key in taken:
            continue
        taken.add(key)
        name = f"random-{seed}-{len(out):03d}"
        words = ", ".join(f"{a}/{b}" for a, b in key)
        out.append(Draft("random", name, f"Random combination (seed {seed}): {words}.", Seq().apply(*docs).step()))
    tries = 0
    made = 0
    while made < RANDOM_STEPS and tries < 100 * RANDOM_STEPS:
        tries += 1
        seq = Seq().apply(*rng.sample(catalogue, 2)).step()
        if len(seq.docs) < 2:
            continue
        for _ in range(rng.choice((2, 3))):
            op = rng.choice(("apply", "delete", "pod", "namespace", "update"))
            if op == "apply":
                doc = rng.choice(catalogue)
                if policy_key(doc) in seq.docs:
                    continue
                seq.apply(doc)
            elif op == "delete" and seq.docs:
                seq.delete(*rng.choice(sorted(seq.docs)))
            elif op == "update" and seq.docs:
                ns, pname = rng.choice(sorted(seq.docs))
                other = rng.choice(catalogue)
                seq.apply({**other, "metadata": {"name": pname, "namespace": ns}})
            elif op == "pod":
                k, v = rng.choice(POD_LABEL_CHOICES)
                seq.label_pod(rng.choice(PODS), {k: v})
            else:
                k, v = rng.choice(NS_LABEL_CHOICES)
                seq.label_ns(rng.choice(NAMESPACES), {k: v})
            if seq.state() != seq.last_state():
                seq.step()
        if len(seq.steps) < 2:
            continue
        out.append(
            Draft(
                "random-steps", f"random-steps-{seed}-{made:03d}", f"Random changes between steps (seed {seed}).", seq
            )
        )
        made += 1
    return out


def generate_cases(seed: int = 0, limit: int | None = None, tiered: bool = False) -> list[Case]:
    """The conformance cases: systematic families (the same for every seed) and random
    combinations and sequences drawn from them (which the seed picks). Same seed, same cases.

    Order: round-robin over the families, so that the first `limit` cases still span them.
    `tiered`: the ClusterNetworkPolicy tier cases instead (conformance/tiered.py).
    """
    if tiered:
        return tiered_cases()[:limit]
    families = [fam() for fam in SYSTEMATIC]
    flat = [d for fam in families for d in fam]
    catalogue = _catalogue(flat)
    taken: set[Any] = set()
    randoms = fam_random(seed, catalogue, taken)
    families.append([d for d in randoms if d.family == "random"])
    families.append([d for d in randoms if d.family == "random-steps"])
    ordered: list[Draft] = []
    for i in range(max(len(f) for f in families)):
        ordered += [f[i] for f in families if i < len(f)]
    cases: list[Case] = []
    keys: set[Any] = set()
    names: set[str] = set()
    for draft in ordered:
        if limit is not None and len(cases) >= limit:
            break
        case = build_case(draft)
        if case.key() in keys or case.name in names:
            continue  # an identical random draw: keep the cases distinct
        keys.add(case.key())
        names.add(case.name)
        cases.append(case)
    return cases
