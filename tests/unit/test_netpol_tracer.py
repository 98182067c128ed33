"""The packet tracer (netpol/tracer.py) over the compiled rules, cross-checked with the oracle.

Random worlds (pods, labels, named ports, placement) and random policies (every feature)
come from a fixed seed, so a failure is reproducible: the message names the seed, the world
and the flow, with the oracle's explanation and the tracer's trace.
"""

from __future__ import annotations

import random

from testbed.netpol import (
    Flow,
    NodeInfo,
    Packet,
    World,
    compile_cluster,
    decide,
    explain_flow,
    render_trace,
    trace_flow,
    trace_packet,
)
from testbed.netpol.tracer import packet_path

from ._netpol import decode_raw, named_port, pod_info, xyz_world

SEED = 20240604
LABEL_VALUES = {"pod": ["a", "b", "c"], "tier": ["web", "db"], "env": ["prod", "dev"]}
CIDRS = [
    ("10.244.0.0/16", ["10.244.1.0/24"]),
    ("10.244.2.0/24", []),
    ("192.168.1.0/24", ["192.168.1.10/32"]),
    ("0.0.0.0/0", ["10.0.0.0/8"]),
    ("10.244.0.12/32", []),
    ("10.244.1.0/24", ["10.244.1.8/29", "10.244.1.16/28"]),
    ("fd00::/8", []),
]
PORTS = [
    {},
    {"protocol": "UDP"},
    {"protocol": "SCTP"},
    {"port": 80},
    {"port": 81, "protocol": "UDP"},
    {"port": 80, "endPort": 81},
    {"port": 53, "protocol": "UDP", "endPort": 54},
    {"port": "http"},
    {"port": "dns", "protocol": "UDP"},
    {"port": "sig", "protocol": "SCTP"},
    {"port": "http", "protocol": "UDP"},
]


def random_selector(rng: random.Random) -> dict:
    kind = rng.randrange(4)
    if kind == 0:
        return {}
    key = rng.choice(sorted(LABEL_VALUES))
    if kind == 1:
        return {"matchLabels": {key: rng.choice(LABEL_VALUES[key])}}
    op = rng.choice(["In", "NotIn", "Exists", "DoesNotExist"])
    expr = {"key": key, "operator": op}
    if op in ("In", "NotIn"):
        expr["values"] = rng.sample(LABEL_VALUES[key], rng.randint(1, len(LABEL_VALUES[key])))
    out: dict = {"matchExpressions": [expr]}
    if kind == 3:
        k2 = rng.choice(sorted(LABEL_VALUES))
        out["matchLabels"] = {k2: rng.choice(LABEL_VALUES[k2])}
    return out


def random_ns_selector(rng: random.Random) -> dict:
    return rng.choice(
        [
            {},
            {"matchLabels": {"team": "blue"}},
            {"matchLabels": {"kubernetes.io/metadata.name": "z"}},
            {"matchExpressions": [{"key": "team", "operator": "Exists"}]},
            {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["red"]}]},
        ]
    )


def random_peer(rng: random.Random) -> dict:
    kind = rng.randrange(4)
    if kind == 0:
        return {"podSelector": random_selector(rng)}
    if kind == 1:
        return {"namespaceSelector": random_ns_selector(rng)}
    if kind == 2:
        return {"podSelector": random_selector(rng), "namespaceSelector": random_ns_selector(rng)}
    cidr, excepts = rng.choice(CIDRS)
    return {"ipBlock": {"cidr": cidr, **({"except": excepts} if excepts else {})}}


def random_rule(rng: random.Random, key: str) -> dict:
    rule: dict = {}
    peers = rng.randrange(4)
    if peers == 1:
        rule[key] = []
    elif peers >= 2:
        rule[key] = [random_peer(rng) for _ in range(peers - 1)]
    ports = rng.randrange(4)
    if ports == 1:
        rule["ports"] = []
    elif ports >= 2:
        rule["ports"] = [dict(p) for p in rng.sample(PORTS, ports - 1)]
    return rule


def random_policy(rng: random.Random, name: str) -> dict:
    spec: dict = {"podSelector": {} if rng.random() < 0.3 else random_selector(rng)}
    types = rng.choice([None, ["Ingress"], ["Egress"], ["Ingress", "Egress"]])
    if types is not None:
        spec["policyTypes"] = types
    for direction, key in (("ingress", "from"), ("egress", "to")):
        n = rng.randrange(4)
        if n == 1:
            spec[direction] = []
        elif n >= 2:
            spec[direction] = [random_rule(rng, key) for _ in range(n - 1)]
    return {"metadata": {"name": name, "namespace": rng.choice("xyz")}, "spec": spec}


def random_world(rng: random.Random) -> World:
    nodes = tuple(NodeInfo(f"n{i}", (f"192.168.1.{2 + i}", f"10.244.{i}.1")) for i in range(3))
    pods = []
    for ns in "xyz":
        for name in "abcd":
            node = rng.randrange(3)
            labels = {k: rng.choice(v) for k, v in LABEL_VALUES.items() if rng.random() < 0.6}
            ports = []
            if rng.random() < 0.8:
                ports.append(named_port("http", rng.choice([80, 81, 8080])))
            if rng.random() < 0.5:
                ports.append(named_port("dns", rng.choice([53, 54]), "UDP"))
            if rng.random() < 0.5:
                ports.append(named_port("sig", 80, "SCTP"))
            pods.append(
                pod_info(
                    ns,
                    f"{name}{rng.randrange(100)}",
                    f"10.244.{node}.{len(pods) + 2}",
                    f"n{node}",
                    labels,
                    tuple(ports),
                )
            )
    namespaces = {"x": {"team": "red"}, "y": {"team": "blue"}, "z": {}}
    policies = [decode_raw(random_policy(rng, f"p{i}")) for i in range(rng.randint(2, 6))]
    return World.build(pods, namespaces, policies, nodes, {"laptop": "192.168.1.10"})


def random_flow(rng: random.Random, world: World) -> Flow:
    pods = [p.full_name for p in world.pods]
    others = ["n0", "n1", "n2", "10.244.1.1", "laptop", "8.8.8.8", "192.168.1.99"]
    src = rng.choice(pods) if rng.random() < 0.75 else rng.choice(others)
    dst = rng.choice(pods) if rng.random() < 0.8 else rng.choice(others)
    proto = rng.choice(["TCP", "TCP", "UDP", "SCTP", "ICMP"])
    port = None if proto == "ICMP" else rng.choice([53, 54, 80, 81, 8080, 9000])
    return Flow(src, dst, port, proto)


def test_tracer_agrees_with_the_oracle_on_random_flows():
    rng = random.Random(SEED)
    checked = allowed = isolated = by_rule = 0
    for case in range(60):
        world = random_world(rng)
        rulesets = compile_cluster(world)
        for _ in range(120):
            flow = random_flow(rng, world)
            verdict = decide(flow, world)
            trace = trace_flow(world, rulesets, flow)
            assert trace.allowed == verdict.allowed, (
                f"seed {SEED} case {case}: {flow}\n{explain_flow(verdict)}\n{render_trace(trace)}\n"
                + "\n".join(f"{p.full_name}: {p}" for p in world.policies)
            )
            # the rule that accepted an isolated destination is one the oracle names
            for hop in trace.hops:
                if hop.accepted and hop.decided_by.startswith("check-ingress"):
                    comment = hop.decided_by.split('comment "')[1]
                    assert any(comment.startswith(f"{a.policy} {a.rule}") for a in verdict.ingress.allows), (
                        comment,
                        verdict.ingress.allows,
                    )
            checked += 1
            allowed += verdict.allowed
            isolated += verdict.ingress.isolated or verdict.egress.isolated
            by_rule += bool(verdict.allowed and (verdict.ingress.allows or verdict.egress.allows))
    # the random cases exercise both outcomes and isolation, not only the default allow
    print(f"{checked} flows: {allowed} allowed, {isolated} with an isolated end, {by_rule} allowed by a rule")
    assert checked == 7200 and 0.2 < allowed / checked < 0.8
    assert isolated / checked > 0.5 and by_rule / checked > 0.1


def test_every_rendered_random_ruleset_keeps_names_unique():
    rng = random.Random(SEED + 1)
    for _ in range(20):
        for rs in compile_cluster(random_world(rng)).values():
            names = [s.name for s in rs.sets]
            assert len(names) == len(set(names))
            referenced = {m.set for c in rs.chains for r in c.rules for m in r.parts if hasattr(m, "set")}
            assert referenced <= set(names)


def test_trace_names_chain_rule_and_set():
    w = xyz_world("""
        metadata: {name: only-a}
        spec: {podSelector: {matchLabels: {pod: b}}, ingress: [{from: [{podSelector: {matchLabels: {pod: a}}}]}]}
    """)
    rs = compile_cluster(w)
    blocked = trace_flow(w, rs, Flow("x/c", "x/b", 80))
    assert not blocked.allowed and len(blocked.hops) == 2  # x/c on n2, x/b on n1
    first, last = blocked.hops
    assert first.node == "n2" and first.accepted and first.decided_by == "policy accept of chain forward"
    assert last.node == "n1" and last.decided_by.startswith("check-ingress[1]: counter drop")
    skipped = [s for s in last.steps if s.chain == "check-ingress" and not s.matched]
    assert skipped[0].why == "10.244.2.12 is not in @p0-in0-peer0"
    allowed = trace_flow(w, rs, Flow("x/a", "x/b", 80))
    assert allowed.allowed and allowed.hops[-1].decided_by.startswith("check-ingress[0]: ")
    text = render_trace(blocked)
    assert text.startswith("trace x/c -> x/b TCP port 80: DROP\n")
    assert "    skip  check-ingress[0] ip daddr @p0-pods ip saddr @p0-in0-peer0 counter accept" in text


def test_replies_pass_on_conntrack_and_paths_follow_the_packet():
    w = xyz_world("metadata: {name: lockdown}\nspec: {podSelector: {}, policyTypes: [Ingress, Egress]}")
    rs = compile_cluster(w)
    reply = trace_packet(rs["n1"], Packet("10.244.1.11", "10.244.0.10", 80, "TCP", ct_state="established"))
    assert reply.accepted and reply.decided_by.startswith("forward[0]: ct state established,related accept")
    new = trace_packet(rs["n1"], Packet("10.244.1.11", "10.244.0.10", 80, "TCP"))
    assert not new.accepted and new.decided_by.startswith("check-egress[0]: counter drop")
    # a pod reaching itself through a Service crosses its node's forward hook (hairpin): never blocked
    hairpin = trace_packet(rs["n1"], Packet("10.244.1.11", "10.244.1.11", 80, "TCP"))
    assert hairpin.accepted and hairpin.decided_by.startswith("forward[1]: ip saddr . ip daddr @pod-self accept")
    assert (
        trace_packet(rs["n1"], Packet("1.1.1.1", "2.2.2.2", 53, "UDP"), hook="output").decided_by
        == "no chain of table testbed-netpol is attached to the output hook"
    )
    nodes, words = packet_path(w.endpoint("n0"), w.endpoint("x/a"))  # x/a runs on n0
    assert nodes == [] and "output hook, not filtered" in words[0]
    nodes, _ = packet_path(w.endpoint("x/a"), w.endpoint("y/b"))
    assert nodes == ["n0", "n2"]
    nodes, words = packet_path(w.endpoint("x/b"), w.endpoint("y/a"))  # both on n1
    assert nodes == ["n1"] and "bridged by cni0" in words[0]
