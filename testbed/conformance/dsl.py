"""A small DSL for the cases: selectors, peers, ports, rules and policies as data, and Seq (pure).

    allow("p", "x", "ingress", ml(pod="a"), [rule([pods(ml(pod="b"))], [port(80)])])
    Seq().apply(deny("d", "y")).step().label_pod("y/a", {"tier": None}).step()

Each builder returns the plain dict a NetworkPolicy document holds (decode.py dumps and
decodes it). Seq records a case step by step, each `step()` the whole state reached so far;
a Draft is a case before it is decoded and tagged (generator.build_case).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .decode import dump
from .steps import label_patch, labels_text
from .xyz import model_namespace_labels, model_pod_labels


def ml(**labels: str) -> dict[str, Any]:
    """A selector by matchLabels."""
    return {"matchLabels": dict(labels)}


def ex(key: str, op: str, *values: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A selector with one matchExpression (and optional matchLabels)."""
    req: dict[str, Any] = {"key": key, "operator": op}
    if values:
        req["values"] = list(values)
    out: dict[str, Any] = {"matchLabels": dict(labels)} if labels else {}
    out["matchExpressions"] = [req]
    return out


ALL: dict[str, Any] = {}


def pods(sel: Mapping[str, Any]) -> dict[str, Any]:
    return {"podSelector": dict(sel)}


def nss(sel: Mapping[str, Any]) -> dict[str, Any]:
    return {"namespaceSelector": dict(sel)}


def both(ns_sel: Mapping[str, Any], pod_sel: Mapping[str, Any]) -> dict[str, Any]:
    return {"namespaceSelector": dict(ns_sel), "podSelector": dict(pod_sel)}


def block(cidr: str, *excepts: str) -> dict[str, Any]:
    return {"ipBlock": {"cidr": cidr, **({"except": list(excepts)} if excepts else {})}}


def port(number: int | str | None = None, protocol: str | None = None, end: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if protocol is not None:
        out["protocol"] = protocol
    if number is not None:
        out["port"] = number
    if end is not None:
        out["endPort"] = end
    return out


def rule(peers: list[Any] | None = None, ports: list[Any] | None = None) -> dict[str, Any]:
    """A rule; None peers/ports: the key is left out (every peer / every port)."""
    return {"peers": peers, "ports": ports}


def netpol(
    name: str,
    ns: str,
    select: Mapping[str, Any] | None = None,
    ingress: list[Any] | None = None,
    egress: list[Any] | None = None,
    types: list[str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": dict(select or {})}
    if types is not None:
        spec["policyTypes"] = list(types)
    for key, rules, peer_key in (("ingress", ingress, "from"), ("egress", egress, "to")):
        if rules is None:
            continue
        out = []
        for r in rules:
            item: dict[str, Any] = {}
            if r.get("peers") is not None:
                item[peer_key] = list(r["peers"])
            if r.get("ports") is not None:
                item["ports"] = list(r["ports"])
            out.append(item)
        spec[key] = out
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def deny(name: str, ns: str, direction: str = "ingress", select: Mapping[str, Any] | None = None) -> dict[str, Any]:
    types = {"ingress": ["Ingress"], "egress": ["Egress"], "both": ["Ingress", "Egress"]}[direction]
    return netpol(name, ns, select, types=types)


def allow(
    name: str,
    ns: str,
    direction: str,
    select: Mapping[str, Any] | None,
    rules: list[Any],
    types: list[str] | None = None,
) -> dict[str, Any]:
    """A policy with rules in one direction; egress policies name policyTypes [Egress]."""
    if direction == "ingress":
        return netpol(name, ns, select, ingress=rules, types=types)
    return netpol(name, ns, select, egress=rules, types=types or ["Egress"])


def policy_key(doc: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name) of a policy document."""
    return doc["metadata"]["namespace"], doc["metadata"]["name"]


class Seq:
    """Builds a case step by step: each `step()` records the state reached so far."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[str, dict[str, str]] = {}
        self.nss: dict[str, dict[str, str]] = {}
        self.ops: list[str] = []
        self.steps: list[tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any], str]] = []

    def apply(self, *docs: dict[str, Any]) -> Seq:
        for doc in docs:
            k = policy_key(doc)
            if k in self.docs and dump(self.docs[k]) == dump(doc):
                continue
            self.ops.append(f"{'update' if k in self.docs else 'apply'} {k[0]}/{k[1]}")
            self.docs[k] = doc
        return self

    def delete(self, ns: str, name: str) -> Seq:
        del self.docs[(ns, name)]
        self.ops.append(f"delete {ns}/{name}")
        return self

    def label_pod(self, ref: str, changes: Mapping[str, str | None]) -> Seq:
        self._label(self.pods, ref, model_pod_labels(ref), changes, "pod")
        return self

    def label_ns(self, name: str, changes: Mapping[str, str | None]) -> Seq:
        self._label(self.nss, name, model_namespace_labels(name), changes, "namespace")
        return self

    def _label(
        self,
        state: dict[str, dict[str, str]],
        key: str,
        model: dict[str, str],
        changes: Mapping[str, str | None],
        what: str,
    ) -> None:
        """Full label sets in `state`, only where they differ from the model; a no-op is not noted."""
        before = state.get(key, model)
        after = self._relabel(before, changes)
        if after == before:
            return
        if after == model:
            state.pop(key, None)
        else:
            state[key] = after
        self.ops.append(f"label {what} {key} {labels_text(label_patch(before, after))}")

    @staticmethod
    def _relabel(labels: Mapping[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
        out = dict(labels)
        for k, v in changes.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = v
        return out

    def state(self) -> tuple[Any, ...]:
        return (tuple(dump(d) for d in self.docs.values()), sorted(self.pods.items()), sorted(self.nss.items()))

    def last_state(self) -> tuple[Any, ...] | None:
        if not self.steps:
            return None
        docs, pod_labels, ns_labels, _ = self.steps[-1]
        return (tuple(dump(d) for d in docs), sorted(pod_labels.items()), sorted(ns_labels.items()))

    def step(self, note: str = "") -> Seq:
        note = note or "; ".join(self.ops) or "no policy"
        self.steps.append((list(self.docs.values()), dict(self.pods), dict(self.nss), note))
        self.ops = []
        return self


@dataclass
class Draft:
    family: str
    name: str
    description: str
    seq: Seq


def single(family: str, name: str, description: str, *docs: dict[str, Any]) -> Draft:
    return Draft(family, name, description, Seq().apply(*docs).step())
