"""The tiers in the node's nft table (netpol/tier_compiler.py): golden text, the tracer agrees
with the oracle on random tiered worlds, rules grow with policies not pods, set updates."""

from __future__ import annotations

import dataclasses
import random

import yaml

from testbed.netpol import Flow, compile_cluster, decide, explain_flow, node_script, reconcile, render_trace, trace_flow

from ._golden import check_golden
from ._netpol import NODES, xyz_pods, xyz_world
from .test_cnp_oracle import DENY_Z, PASS_AND_BASELINE, tiers, world
from .test_netpol_tracer import random_ns_selector, random_selector

NP = "metadata: {name: allow-ns-y, namespace: x}\nspec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]}"
SEED = 20261130


def test_tiered_table_matches_golden():
    w = world(PASS_AND_BASELINE + "---" + DENY_Z, NP)
    check_golden("netpol/cnp-n0.nft", node_script(w, "n0"))


def test_without_tiers_the_table_has_no_tier_chain():
    assert "tiers-" not in node_script(xyz_world(NP), "n0")


def _random_tier_policy(rng: random.Random, i: int) -> dict:
    def peer(direction):
        kind = rng.randrange(4 if direction == "egress" else 2)
        if kind == 0:
            return {"namespaces": random_ns_selector(rng)}
        if kind == 1:
            return {"pods": {"namespaceSelector": random_ns_selector(rng), "podSelector": random_selector(rng)}}
        if kind == 2:
            return {
                "networks": rng.sample(
                    ["10.244.0.0/16", "10.244.1.0/24", "192.168.1.10/32", "0.0.0.0/0", "10.244.2.12/32"],
                    rng.randint(1, 2),
                )
            }
        return {"nodes": rng.choice([{}, {"matchLabels": {"zone": "a"}}])}

    def protocols(named_ok):
        choices = [
            {"tcp": {"destinationPort": {"number": 80}}},
            {"udp": {"destinationPort": {"range": {"start": 80, "end": 81}}}},
            {"sctp": {"destinationPort": {"number": 81}}},
        ]
        if named_ok:
            choices.append({"destinationNamedPort": rng.choice(["serve-80-tcp", "serve-81-udp"])})
        return rng.sample(choices, rng.randint(1, 2))

    def rules(direction):
        out = []
        for r in range(rng.randint(0, 2)):
            peers = [peer(direction) for _ in range(rng.randint(1, 2))]
            rule = {
                "name": f"r{r}",
                "action": rng.choice(["Accept", "Deny", "Pass"]),
                direction == "ingress" and "from" or "to": peers,
            }
            if rng.random() < 0.5:
                rule["protocols"] = protocols(not any("networks" in p or "nodes" in p for p in peers))
            out.append(rule)
        return out

    subject = rng.choice(
        [
            {"namespaces": random_ns_selector(rng)},
            {"pods": {"namespaceSelector": random_ns_selector(rng), "podSelector": random_selector(rng)}},
        ]
    )
    return {
        "metadata": {"name": f"c{i}"},
        "spec": {
            "tier": rng.choice(["Admin", "Baseline"]),
            "priority": rng.randint(0, 3),
            "subject": subject,
            "ingress": rules("ingress"),
            "egress": rules("egress"),
        },
    }


def test_the_tracer_agrees_with_the_oracle_on_random_tiered_worlds():
    rng = random.Random(SEED)
    ends = [f"{p.namespace}/{p.name}" for p in xyz_pods()] + ["n1", "laptop"]
    for case in range(25):
        docs = [_random_tier_policy(rng, i) for i in range(rng.randint(1, 4))]
        nps = [NP] if rng.random() < 0.5 else []
        w = xyz_world("---\n".join(nps)).with_tiers(tiers(yaml.safe_dump_all(docs)))
        w = type(w)(**{**w.__dict__, "node_labels": {"n1": {"zone": "a"}}})
        rulesets = compile_cluster(w)
        for _ in range(40):
            flow = Flow(
                rng.choice(ends),
                rng.choice(ends),
                *rng.choice([(80, "TCP"), (81, "UDP"), (81, "SCTP"), (80, "UDP"), (None, "ICMP")]),
            )
            verdict = decide(flow, w)
            trace = trace_flow(w, rulesets, flow)
            assert trace.allowed == verdict.allowed, (
                f"seed {SEED} case {case}: {flow}\n{yaml.safe_dump_all(docs)}\n{explain_flow(verdict)}\n{render_trace(trace)}"
            )


def test_trace_shows_the_tier_chains():
    w = world(DENY_Z, NP)
    text = render_trace(trace_flow(w, compile_cluster(w), Flow("x/a", "z/b", 80)))
    assert (
        "DROP" in text
        and "tiers-ingress" in text
        and "Admin cnp/deny-sensitive ingress rule select-all-deny-all: Deny" in text
    )


def test_rules_grow_with_policies_not_pods_and_pods_are_set_updates():
    w = world(PASS_AND_BASELINE + "---" + DENY_Z, NP)
    small = node_script(w, "n0").count("counter")
    many = [p for k in range(5) for p in xyz_pods()]
    big_pods = [
        dataclasses.replace(p, name=f"{p.name}{i}", ip=f"10.244.{p.ip.split('.')[2]}.{50 + i}")
        for i, p in enumerate(many)
    ]
    big = w.with_pods(big_pods)
    assert node_script(big, "n0").count("counter") == small
    changes = reconcile(w, w.with_namespace_labels("z", {"ns": "y"}))
    assert changes and all(c.action == "update" for c in changes.values())


def test_node_labels_come_from_the_plan():
    assert NODES  # the xyz world's nodes have no labels: a nodes peer {} still selects them all
    w = world("""
    metadata: {name: no-nodes}
    spec:
      tier: Admin
      priority: 0
      subject: {namespaces: {}}
      egress: [{name: nodes, action: Deny, to: [{nodes: {}}]}]
    """)
    assert not decide(Flow("x/a", "n1", 80), w).allowed
    assert decide(Flow("x/a", "n0", 80), w).allowed  # its own node: never filtered
