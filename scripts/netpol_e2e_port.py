"""Restate upstream Kubernetes' e2e NetworkPolicy tests as 48 testbed experiments (issue 18).

    python3 scripts/netpol_e2e_port.py [OUT-DIR]      # default: benchmarks/netpol48

Reads benchmarks/netpol48/upstream-cases.yaml: the 48 `f.It` cases (42 TCP, 3 UDP, 3 SCTP) of
kubernetes/kubernetes test/e2e/network/netpol/network_policy.go at commit
008b3652959ca58af8be3fb5b6ecfe9ae7638282 (Apache-2.0, Copyright 2016 The Kubernetes Authors),
transcribed as facts: per case the pods it lists, the policies each step creates or updates, the
label changes and deletions, and each ValidateOrFail (port, protocol, and the reachability matrix
as upstream's own calls, in upstream's order, so that each line can be set beside upstream's).
This script replays those calls exactly as upstream's Reachability does (NewReachability(pods,
true), later calls override earlier ones) and writes:

- `cases/<case>.yaml`, one Experiment per upstream case on the x/y/z model (the 3-node topology
  and the 9 pinned pods of testbed/conformance/data/, the model upstream's truth tables name): one
  step per run of policy/label/delete calls followed by its ValidateOrFail calls; each validation
  becomes probe groups (sources with the same allowed and blocked targets merged) expecting
  `connected` or `blocked`;
- `policies/<case>-<step>-<n>.yaml`, the policies the steps apply.

Every case builds the whole model (9 pods, as upstream's older revisions did for every case). This
revision lists the pods each case needs (`initializeResources(..., "x/a", "x/b", "y/a")`) and
probes every ordered pair of those, so the experiments probe exactly those pairs: a cell of a pod
the case does not list is not upstream's fact (`tcp-allow-ingress-target` would block x/c, which
upstream's matrix leaves true because it has no x/c). Self-pairs are skipped, as upstream's
ignoreLoopback does. Run once by hand; the output is committed, so the repository needs no network.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SUITE = os.path.join(HERE, "..", "benchmarks", "netpol48")
UPSTREAM = (
    "kubernetes/kubernetes test/e2e/network/netpol/network_policy.go "
    "@ 008b3652959ca58af8be3fb5b6ecfe9ae7638282 (Apache-2.0)"
)
PODS = [f"{ns}/{p}" for ns in "xyz" for p in "abc"]
MODEL_IPS = {"x/b": "10.244.1.2", "y/b": "10.244.2.3"}  # the pinned pods the ipBlock cases name
MODEL = "../../../testbed/conformance/data"


def load_cases(path: str = os.path.join(SUITE, "upstream-cases.yaml")) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


# --- upstream's Reachability, replayed ----------------------------------------------------------


def _matches(peer: dict[str, str], pod: str) -> bool:
    ns, name = pod.split("/")
    return peer.get("namespace", ns) == ns and peer.get("pod", name) == name


def truth(calls: list[dict[str, list]]) -> dict[tuple[str, str], bool]:
    """NewReachability(all 9, true) and the calls in order: (from, to) -> allowed."""
    table = {(a, b): True for a in PODS for b in PODS}
    for call in calls:
        ((kind, args),) = call.items()
        if kind == "ExpectPeer":
            for a in PODS:
                for b in PODS:
                    if _matches(args[0], a) and _matches(args[1], b):
                        table[a, b] = args[2]
        elif kind == "ExpectAllIngress":
            for a in PODS:
                table[a, args[0]] = args[1]
        elif kind == "ExpectAllEgress":
            for b in PODS:
                table[args[0], b] = args[1]
        elif kind == "Expect":
            table[args[0], args[1]] = args[2]
        else:
            raise ValueError(f"unknown reachability call {kind}")
    return table


def groups(port: int, protocol: str, calls: list, probed: list[str]) -> list[dict[str, Any]]:
    """Probe groups for one ValidateOrFail among the case's pods: sources with the same allowed
    and blocked targets merged."""
    table = truth(calls)
    by_targets: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for a in probed:
        ok = tuple(b for b in probed if b != a and table[a, b])  # self-pairs: ignoreLoopback
        no = tuple(b for b in probed if b != a and not table[a, b])
        by_targets.setdefault((ok, no), []).append(a)
    out: list[dict[str, Any]] = []
    for (ok, no), sources in by_targets.items():
        for targets, outcome in ((ok, "connected"), (no, "blocked")):
            if targets:
                out.append(
                    {
                        "name": f"{protocol.lower()}-{port}-{outcome}-{len(out) + 1}",
                        "from": {"pods": {"names": sources}},
                        "to": {"pods": {"names": list(targets)}},
                        "ports": [port],
                        "protocols": [protocol],
                        "timeout": 1,
                        "expect": {"outcome": outcome},
                    }
                )
    return out


# --- writing --------------------------------------------------------------------------------------


def experiment(case: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The Experiment document and the policy files its steps apply ({file name: policy})."""
    name = case["case"]
    files: dict[str, dict[str, Any]] = {}
    steps = []
    for i, step in enumerate(case["steps"], 1):
        actions: list[dict[str, Any]] = []
        for n, act in enumerate(step["do"], 1):
            ((kind, arg),) = act.items()
            if kind == "apply":
                files[f"{name}-{i}-{n}.yaml"] = arg
                actions.append({"apply": [f"../policies/{name}-{i}-{n}.yaml"]})
            elif kind == "labelNamespace":
                actions.append({"label": {"namespace": arg["namespace"], "labels": arg["labels"]}})
            elif kind == "labelPod":
                actions.append({"label": {"pods": {"names": [arg["pod"]]}, "labels": arg["labels"]}})
            elif kind == "deleteAllPolicies":
                actions.append({"delete": [f"../policies/{f}" for f in files]})
            else:
                raise ValueError(f"{name}: unknown action {kind}")
        probes = [
            g for v in step["validate"] for g in groups(v["toPort"], v["protocol"], v["reachability"], case["pods"])
        ]
        steps.append({"name": f"step-{i}", "actions": actions, "probes": probes})
    doc = {
        "apiVersion": "testbed/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": f"netpol-e2e-{name}", "description": f"upstream e2e [{case['context']}] {case['it']}"},
        "spec": {
            "topology": f"{MODEL}/three-nodes.yaml",
            "manifests": [f"{MODEL}/xyz.yaml"],
            "seed": 0,
            "steps": steps,
        },
    }
    return doc, files


class _Dumper(yaml.SafeDumper):
    """No anchors for shared lists; lists of scalars in flow style (short files)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _write(path: str, what: str, docs: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"# Generated by scripts/netpol_e2e_port.py from {UPSTREAM}.\n# Upstream case: {what}\n")
        yaml.dump_all(docs, handle, Dumper=_Dumper, sort_keys=False, width=120, default_flow_style=None)


def main(argv: list[str]) -> int:
    out = argv[1] if len(argv) > 1 else SUITE
    cases = load_cases()
    if len(cases) != 48 or len({c["case"] for c in cases}) != 48:
        raise SystemExit("upstream-cases.yaml: expected 48 distinct cases")
    for sub in ("cases", "policies"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    for case in cases:
        doc, files = experiment(case)
        what = f"[{case['context']}] {case['it']}"
        _write(os.path.join(out, "cases", f"{case['case']}.yaml"), what, [doc])
        for name, policy in files.items():
            _write(os.path.join(out, "policies", name), what, [policy])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
