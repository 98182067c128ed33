"""A deterministic corpus of bad inputs, made by mutating the shipped good files (issue 11).

`corpus(seed)` returns Cases: a topology file, a manifest file or an experiment file, each
with one mutation that must make it invalid — a wrong type, an unknown field, a huge or
negative number, deep nesting, an alias bomb, a missing file, an unknown name, a bad CIDR, a
bad label, truncated YAML, binary junk, a huge string. Mutations are aimed at fields the
loaders check (a wrong type in `image`, which is ignored, would be valid), so every case is
expected to be refused; truncations are kept only when PyYAML itself (an independent judge)
finds the text malformed. Same seed, same corpus.
"""

from __future__ import annotations

import copy
import pathlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
TOPOLOGIES = sorted((REPO / "topologies").glob("*.yaml"))
MANIFESTS = sorted((REPO / "manifests").glob("*.yaml"))
EXPERIMENTS = sorted((REPO / "experiments").glob("*.yaml"))
DEFAULT_TOPOLOGY = REPO / "topologies" / "three-nodes.yaml"


@dataclass(frozen=True)
class Case:
    kind: str  # topology | manifest | experiment
    name: str  # <source file>:<mutation>:<n>, for a readable test id
    data: bytes  # the file's content
    base: str  # the good file it was derived from


# -- values -------------------------------------------------------------------------------------


def deep(levels: int = 80) -> Any:
    """Nested lists and mappings, deeper than the loaders allow (PyYAML can dump ~100 levels;
    the text mutations go to 5,000)."""
    value: Any = "bottom"
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


def bomb(width: int = 9, levels: int = 9) -> Any:
    """A billion-laughs structure: safe_dump writes it with anchors and aliases in ~600 bytes."""
    value: Any = ["lol"] * width
    for _ in range(levels - 1):
        value = [value] * width
    return value


HUGE_STRING = "x" * 1_000_000
WRONG_TYPES: list[Any] = [42, -5, 1.5, True, "a-string", [1, 2], {"a": 1}, None]
HUGE_NUMBERS: list[Any] = [100_000_000, 10**30, 2**64, 1e308]
BAD_CIDRS: list[Any] = [
    "127.0.0.0/16",
    "224.0.0.0/16",
    "0.0.0.0/0",
    "0.0.0.0/8",
    "169.254.0.0/16",
    "240.0.0.0/8",
    "255.255.255.255/32",
    "10.244.0.0/33",
    "10.244.0.1/16",
    "banana",
    "fd00::/64",
    42,
    "",
]
BAD_LABEL_KEYS = ["bad key!", "-starts-with-dash", "a/b/c", "x" * 70, "UPPER_/name", ""]
BAD_LABEL_VALUES = ["not valid!", "v" * 64, "-dash-", "a b"]


def _bad_labels(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {rng.choice(BAD_LABEL_KEYS): "ok"}
    return {"app": rng.choice(BAD_LABEL_VALUES + [42, True, [1]])}


# -- helpers on parsed documents ----------------------------------------------------------------


def _dump(docs: list[Any]) -> bytes:
    return yaml.safe_dump_all(docs, sort_keys=False, width=10**9).encode()


def _load(path: pathlib.Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _absolute_paths(exp: dict[str, Any], base: pathlib.Path) -> dict[str, Any]:
    """An experiment whose file names work from any folder (the corpus is written elsewhere)."""

    def fix(p: Any) -> Any:
        return str((base.parent / p).resolve()) if isinstance(p, str) else p

    spec = exp["spec"]
    spec["topology"] = fix(spec["topology"])
    spec["manifests"] = [fix(m) for m in spec.get("manifests", [])]
    for step in spec.get("steps", []):
        for action in step.get("actions", []) or []:
            for verb in ("apply", "delete"):
                if verb in action:
                    action[verb] = [fix(f) for f in action[verb]]
    return exp


# -- mutations: each takes (rng, docs) and changes docs in place so that they must be refused ----

Mutation = Callable[[random.Random, list[Any]], None]


def _kind_doc(docs: list[Any]) -> dict[str, Any]:
    return next(d for d in docs if isinstance(d, dict) and d.get("kind") == "Cluster")


def _testbed_doc(docs: list[Any]) -> dict[str, Any]:
    doc = next((d for d in docs if isinstance(d, dict) and d.get("kind") == "TestbedConfig"), None)
    if doc is None:
        doc = {"apiVersion": "testbed/v1alpha1", "kind": "TestbedConfig"}
        docs.append(doc)
    return doc


def t_bad_subnet(rng: random.Random, docs: list[Any]) -> None:
    net = _kind_doc(docs).setdefault("networking", {})
    net[rng.choice(["podSubnet", "serviceSubnet"])] = rng.choice(BAD_CIDRS + ["10.96.0.0/30", "10.96.0.0/31"])


def t_overlap(rng: random.Random, docs: list[Any]) -> None:
    net = _kind_doc(docs).setdefault("networking", {})
    net["serviceSubnet"] = net.get("podSubnet", "10.244.0.0/16")


def t_bad_underlay(rng: random.Random, docs: list[Any]) -> None:
    tb = _testbed_doc(docs)
    tb.pop("underlay", None)
    bad = BAD_CIDRS + ["10.244.0.0/24", "10.96.0.0/24"]
    if (_kind_doc(docs).get("networking") or {}).get("ipFamily") == "ipv6":  # an IPv6 underlay is right there
        bad = [c for c in bad if not (isinstance(c, str) and c.startswith("fd00:"))]
    tb["underlay"] = {"subnet": rng.choice(bad)}


def t_wrong_type(rng: random.Random, docs: list[Any]) -> None:
    kind = _kind_doc(docs)
    field = rng.choice(["nodes", "networking", "name"])
    kind[field] = rng.choice([v for v in WRONG_TYPES if v is not None and not (field == "name" and isinstance(v, str))])


def t_node_role(rng: random.Random, docs: list[Any]) -> None:
    nodes = _kind_doc(docs).setdefault("nodes", [{"role": "control-plane"}])
    node = rng.choice(nodes)
    if rng.random() < 0.5:
        node["role"] = rng.choice(["master", 42, "", "Worker"])
    else:
        node["labels"] = _bad_labels(rng)


def t_unknown_field(rng: random.Random, docs: list[Any]) -> None:
    target = rng.choice([_kind_doc(docs), _kind_doc(docs).setdefault("networking", {}), _testbed_doc(docs)])
    target[rng.choice(["bogusField", "podsubnet", "replicas", "x" * 300])] = rng.choice(WRONG_TYPES[:-1])


def t_proxy_mode(rng: random.Random, docs: list[Any]) -> None:
    _kind_doc(docs).setdefault("networking", {})["kubeProxyMode"] = rng.choice(["ipvz", "userspace", 7, ""])


def t_testbed_numbers(rng: random.Random, docs: list[Any]) -> None:
    _testbed_doc(docs)["podCIDRPrefix"] = rng.choice([-5, 0, 33, 10**30, "24", 1.5])


def t_routing(rng: random.Random, docs: list[Any]) -> None:
    _testbed_doc(docs)["routing"] = rng.choice(["ospf", "", 42, ["bgp"]])


def t_external(rng: random.Random, docs: list[Any]) -> None:
    tb = _testbed_doc(docs)
    tb["externalHosts"] = [
        {
            "name": rng.choice(["laptop", "Bad_Name", HUGE_STRING[:400]]),
            "ip": rng.choice(["not-an-ip", "127.0.0.1", "192.168.99.300", 42, "10.96.0.10"]),
        }
    ]


TOPOLOGY_MUTATIONS: list[Mutation] = [
    t_bad_subnet,
    t_overlap,
    t_bad_underlay,
    t_wrong_type,
    t_node_role,
    t_unknown_field,
    t_proxy_mode,
    t_testbed_numbers,
    t_routing,
    t_external,
]


def _objects(docs: list[Any], kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for d in docs:
        if isinstance(d, dict) and d.get("kind") == "List":
            out += [i for i in d.get("items", []) if isinstance(i, dict) and i.get("kind") in kinds]
        elif isinstance(d, dict) and d.get("kind") in kinds:
            out.append(d)
    return out


_CONTROLLERS = ("Deployment", "ReplicaSet", "ReplicationController")


def m_replicas(rng: random.Random, docs: list[Any]) -> None:
    objs = _objects(docs, _CONTROLLERS)
    if not objs:
        return m_unknown_field(rng, docs)
    rng.choice(objs)["spec"]["replicas"] = rng.choice(HUGE_NUMBERS + [-5, -1, "three", 1.5, [3], {"n": 3}, True])


def _pod_specs(docs: list[Any]) -> list[dict[str, Any]]:
    return [o["spec"] for o in _objects(docs, ("Pod",))] + [
        o["spec"]["template"]["spec"] for o in _objects(docs, _CONTROLLERS)
    ]


def m_container_port(rng: random.Random, docs: list[Any]) -> None:
    specs = [s for s in _pod_specs(docs) if any(c.get("ports") for c in s.get("containers", []))]
    if not specs:
        return m_unknown_field(rng, docs)
    container = rng.choice([c for c in rng.choice(specs)["containers"] if c.get("ports")])
    port = rng.choice(container["ports"])
    field = rng.choice(["containerPort", "protocol", "name"])
    port[field] = {
        "containerPort": rng.choice([0, -5, 70000, 10**30, "http", None]),
        "protocol": rng.choice(["ICMP", "tcp", 6, "SCTP "]),
        "name": rng.choice(["Not_A_Name", "waytoolongportname", "--", 80]),
    }[field]


def m_containers(rng: random.Random, docs: list[Any]) -> None:
    specs = _pod_specs(docs)
    if not specs:
        return m_unknown_field(rng, docs)
    rng.choice(specs)["containers"] = rng.choice([42, "nginx", [], [42], [{"image": "x"}], deep(), bomb()])


def m_name(rng: random.Random, docs: list[Any]) -> None:
    obj = rng.choice(_objects(docs, _CONTROLLERS + ("Pod", "Service", "NetworkPolicy", "Namespace", "Ingress")))
    obj["metadata"]["name"] = rng.choice(["Bad_Name", "-x", HUGE_STRING, "a" * 300, 42, "", ["web"]])


def m_namespace(rng: random.Random, docs: list[Any]) -> None:
    obj = rng.choice(_objects(docs, _CONTROLLERS + ("Pod", "Service", "NetworkPolicy")))
    obj["metadata"]["namespace"] = rng.choice(["no-such-ns", "Bad_NS", 42])


def m_labels(rng: random.Random, docs: list[Any]) -> None:
    obj = rng.choice(_objects(docs, _CONTROLLERS + ("Pod", "Service", "NetworkPolicy", "Namespace")))
    obj["metadata"]["labels"] = _bad_labels(rng)


def m_selector(rng: random.Random, docs: list[Any]) -> None:
    objs = _objects(docs, _CONTROLLERS)
    if not objs:
        return m_labels(rng, docs)
    obj = rng.choice(objs)
    if obj["kind"] == "ReplicationController":
        obj["spec"]["selector"] = {"app": "does-not-match-the-template"}
    else:
        obj["spec"]["selector"] = rng.choice(
            [
                {"matchLabels": {"app": "does-not-match"}},
                {},
                {"matchExpressions": [{"key": "app", "operator": "Near"}]},
                {"matchLabels": _bad_labels(rng)},
                42,
            ]
        )


def m_service(rng: random.Random, docs: list[Any]) -> None:
    objs = _objects(docs, ("Service",))
    if not objs:
        return m_replicas(rng, docs)
    spec = rng.choice(objs)["spec"]
    field = rng.choice(["type", "port", "nodePort", "selector", "sessionAffinity"])
    if field in ("port", "nodePort") and not spec.get("ports"):  # an ExternalName Service has none
        field = "type"
    if field == "port":
        spec["ports"][0]["port"] = rng.choice([0, -5, 70000, "eighty"])
    elif field == "nodePort":
        spec["type"] = "NodePort"
        spec["ports"][0]["nodePort"] = rng.choice([80, 29999, 32768, -1])
    elif field == "selector":
        spec["selector"] = _bad_labels(rng)
    else:
        spec[field] = rng.choice(["Weird", 42, "none"])  # "" is the default, as in Kubernetes


def m_policy(rng: random.Random, docs: list[Any]) -> None:
    objs = _objects(docs, ("NetworkPolicy",))
    if not objs:
        return m_service(rng, docs)
    spec = rng.choice(objs)["spec"]
    field = rng.choice(["policyTypes", "podSelector", "ingress"])
    spec[field] = {
        "policyTypes": ["Sideways"],
        "podSelector": 42,
        "ingress": [{"from": [{"ipBlock": {"cidr": rng.choice(["banana", "10.0.0.0/33"])}}]}],
    }[field]


def m_unknown_field(rng: random.Random, docs: list[Any]) -> None:
    obj = rng.choice(_objects(docs, _CONTROLLERS + ("Pod", "Service", "NetworkPolicy", "Namespace", "Ingress")))
    where = rng.choice([obj, obj["metadata"]] + ([obj["spec"]] if isinstance(obj.get("spec"), dict) else []))
    where[rng.choice(["bogusField", "replica", "x" * 500])] = rng.choice(WRONG_TYPES[:-1])


def m_kind(rng: random.Random, docs: list[Any]) -> None:
    obj = rng.choice(_objects(docs, _CONTROLLERS + ("Pod", "Service", "NetworkPolicy", "Namespace")))
    field = rng.choice(["kind", "apiVersion"])
    obj[field] = rng.choice(["Deploymnt", "apps/v9", 42, "", HUGE_STRING[:1000]])


MANIFEST_MUTATIONS: list[Mutation] = [
    m_replicas,
    m_container_port,
    m_containers,
    m_name,
    m_namespace,
    m_labels,
    m_selector,
    m_service,
    m_policy,
    m_unknown_field,
    m_kind,
]


def _groups(exp: dict[str, Any]) -> list[dict[str, Any]]:
    return [g for s in exp["spec"]["steps"] for g in (s.get("probes") or [])]


def e_missing_file(rng: random.Random, docs: list[Any]) -> None:
    spec = docs[0]["spec"]
    which = rng.choice(["topology", "manifests", "apply"])
    missing = rng.choice(["missing.yaml", "/nonexistent/x.yaml", "/", "."])
    if which != "topology" and missing in ("/", "."):
        missing += "nonexistent/"  # a folder of manifests is valid there (`kubectl apply -f DIR`)
    if which == "topology":
        spec["topology"] = missing
    elif which == "manifests":
        spec["manifests"] = list(spec.get("manifests", [])) + [missing]
    else:
        spec["steps"][0].setdefault("actions", []).append({"apply": [missing]})


def e_unknown_name(rng: random.Random, docs: list[Any]) -> None:
    groups = _groups(docs[0])
    group = rng.choice(groups)
    side = rng.choice(["from", "to"])
    group[side] = rng.choice(
        [
            {"pods": {"names": ["web-typo"]}},
            {"pods": {"namespace": "nope"}},
            {"pods": {"matchLabels": {"app": "nothing-has-this"}}},
        ]
        + (
            [{"nodes": ["kind-wrker"]}, {"hosts": ["no-such-host"]}]
            if side == "from"
            else [{"service": {"name": "no-such-service"}}]
        )
    )


def e_wrong_type(rng: random.Random, docs: list[Any]) -> None:
    group = rng.choice(_groups(docs[0]))
    field = rng.choice(["from", "to", "repeat", "timeout", "ports", "protocols", "expect", "name"])
    group[field] = {
        "from": {"pods": {"names": [42]}},
        "to": {"pods": rng.choice([42, "some", [1]])},
        "repeat": rng.choice(["ten", 0, -5, 10**30, 1.5]),
        "timeout": rng.choice([-1, 0, 1000, "1s"]),
        "ports": rng.choice([[0], [-5], [70000], [True], [[80]], "80"]),
        "protocols": rng.choice([["tcp"], ["ICMP"], [42], "TCP"]),
        "expect": rng.choice([{"outcome": "maybe"}, {"sourceIP": "whoever"}, 42]),
        "name": rng.choice([42, None, ["g"]]),
    }[field]


def e_bad_port_name(rng: random.Random, docs: list[Any]) -> None:
    rng.choice(_groups(docs[0]))["ports"] = [rng.choice(["nosuchport", "Bad_Port", "x" * 40])]


def e_scapy_source(rng: random.Random, docs: list[Any]) -> None:
    group = rng.choice(_groups(docs[0]))
    group["method"] = "scapy"
    # an address of the other family than the group's probes is refused too (a group naming no
    # family takes its sourceIP's, which is valid: the other family needs a family given)
    value = rng.choice(["not-an-ip", "999.1.1.1", "other", 42])
    if value == "other":
        family = group.setdefault("family", "IPv4")
        value = "10.0.0.1" if family == "IPv6" else "fd00::1"
    group["sourceIP"] = value
    group.pop("http", None)


def e_action(rng: random.Random, docs: list[Any]) -> None:
    step = rng.choice(docs[0]["spec"]["steps"])
    step.setdefault("actions", []).insert(
        0,
        rng.choice(
            [
                {"scale": {"deployment": "no-such-deployment", "replicas": 2}},
                {"scale": {"deployment": "web", "replicas": rng.choice([100_000_000, -1, "two"])}},
                {"label": {"pods": "all", "labels": {rng.choice(BAD_LABEL_KEYS): "v"}}},
                {"label": {"pods": "all", "labels": {"app": rng.choice(BAD_LABEL_VALUES)}}},
                {"label": {"namespace": "no-such-ns", "labels": {"a": "b"}}},
                {"deletePods": {"names": ["no-such-pod"]}},
                {"rollback": {"deployment": "no-such-deployment"}},
                {"rollout": {"deployment": "web", "maxSurge": rng.choice(["lots", "200%", -1])}},
                {"apply": [42]},
                {"teleport": {"pods": "all"}},
                {"scale": {}, "label": {}},
            ]
        ),
    )


def e_capture(rng: random.Random, docs: list[Any]) -> None:
    step = rng.choice(docs[0]["spec"]["steps"])
    step["capture"] = [
        rng.choice(
            [
                {"at": "nowhere"},
                {"at": "kind-worker", "interface": "wlan9"},
                {"at": "kind-worker", "interface": "a/b"},
                {"at": "kind-worker", "filter": "-w /tmp/x"},
                {"at": "kind-worker", "maxPackets": -1},
                {"interface": "eth0"},
            ]
        )
    ]


def e_steps(rng: random.Random, docs: list[Any]) -> None:
    spec = docs[0]["spec"]
    choice = rng.randrange(6)
    if choice == 0:
        spec["steps"] = []
    elif choice == 1:
        spec["steps"] = rng.choice([42, "all", {"name": "x"}])
    elif choice == 2:
        spec["steps"].append(copy.deepcopy(spec["steps"][0]))  # duplicate step name
    elif choice == 3:
        spec["steps"][0] = {"name": "empty"}
    elif choice == 4:
        spec["seed"] = rng.choice([-1, 10**30, "seven", 1.5])
    else:
        spec["steps"][0]["during"] = {"probes": [], "interval": rng.choice([0, -1, 100])}


def e_unknown_field(rng: random.Random, docs: list[Any]) -> None:
    exp = docs[0]
    where = rng.choice([exp, exp["spec"], exp["metadata"], rng.choice(exp["spec"]["steps"]), rng.choice(_groups(exp))])
    where[rng.choice(["bogusField", "step", "x" * 500])] = rng.choice(WRONG_TYPES[:-1])


EXPERIMENT_MUTATIONS: list[Mutation] = [
    e_missing_file,
    e_unknown_name,
    e_wrong_type,
    e_bad_port_name,
    e_scapy_source,
    e_action,
    e_capture,
    e_steps,
    e_unknown_field,
]


# -- text-level mutations, for every kind --------------------------------------------------------


def x_truncated(rng: random.Random, text: bytes) -> bytes | None:
    """Cut the file where PyYAML (an independent judge) says the rest no longer parses."""
    for _ in range(40):
        cut = rng.randrange(1, max(2, len(text) - 1))
        head = text[:cut]
        try:
            list(yaml.safe_load_all(head.decode("utf-8", "replace")))
        except yaml.YAMLError:
            return head
    return None


def x_binary(rng: random.Random, text: bytes) -> bytes:
    junk = bytes(rng.randrange(256) for _ in range(rng.randrange(16, 4096)))
    pos = rng.randrange(len(text))
    return text[:pos] + b"\xff\x00" + junk + text[pos:]


def x_bomb_text(rng: random.Random, text: bytes) -> bytes:
    lines = ['lol0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"lol{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, rng.randrange(8, 12))]
    return ("\n".join(lines) + "\n").encode() + text


def x_deep_text(rng: random.Random, text: bytes) -> bytes:
    n = rng.choice([100, 500, 5000, 50_000])
    if rng.random() < 0.5:
        return b"deep: " + b"[" * n + b"]" * n + b"\n" + text
    return b"deep:" + b"".join(b"\n" + b" " * i + b"k:" for i in range(1, min(n, 1500))) + b" 1\n" + text


def x_tabs(rng: random.Random, text: bytes) -> bytes:
    # a tab indenting a top-level key (YAML allows no tab as indentation); not the first indented
    # line's: that may continue a quoted scalar, where a tab is plain white space
    return re.sub(rb"\n(?=[A-Za-z])", b"\n\t", text, count=1) if re.search(rb"\n[A-Za-z]", text) else b"\t" + text


def x_duplicate_key(rng: random.Random, text: bytes) -> bytes:
    return b"kind: First\nkind: Second\n" + text


TEXT_MUTATIONS = [x_truncated, x_binary, x_bomb_text, x_deep_text, x_tabs, x_duplicate_key]


# -- the corpus ----------------------------------------------------------------------------------


def _sources() -> list[tuple[str, pathlib.Path, list[Mutation]]]:
    return (
        [("topology", p, TOPOLOGY_MUTATIONS) for p in TOPOLOGIES]
        + [("manifest", p, MANIFEST_MUTATIONS) for p in MANIFESTS]
        + [("experiment", p, EXPERIMENT_MUTATIONS) for p in EXPERIMENTS]
    )


def corpus(seed: int = 11, structural: int = 480, textual: int = 140) -> list[Case]:
    """`structural` cases mutating parsed documents, `textual` mutating bytes; plus a few fixed
    extremes (oversized file, too many documents). Deterministic for a seed."""
    rng = random.Random(seed)
    sources = _sources()
    parsed = {p: _load(p) for _, p, _ in sources}
    for kind, p, _ in sources:
        if kind == "experiment":
            parsed[p] = [_absolute_paths(parsed[p][0], p)]
    cases: list[Case] = []
    n = 0
    while sum(1 for c in cases if ":x_" not in c.name) < structural:
        kind, path, mutations = sources[n % len(sources)]
        n += 1
        docs = copy.deepcopy(parsed[path])
        mutation = rng.choice(mutations)
        mutation(rng, docs)
        if rng.random() < 0.08:  # now and then, a huge value in an unchecked spot as well
            docs.append({"padding": rng.choice([HUGE_STRING[:200_000], bomb(3, 4)])}) if kind == "manifest" else None
        cases.append(Case(kind, f"{path.name}:{mutation.__name__}:{n}", _dump(docs), str(path)))
    while sum(1 for c in cases if ":x_" in c.name) < textual:
        kind, path, _ = sources[n % len(sources)]
        n += 1
        mutation = rng.choice(TEXT_MUTATIONS)
        text = _dump(parsed[path])
        data = mutation(rng, text)
        if data is not None:
            cases.append(Case(kind, f"{path.name}:{mutation.__name__}:{n}", data, str(path)))
    big = b"a: [" + b"1," * (5 * 1024 * 1024) + b"1]\n"
    cases.append(Case("manifest", "oversized:x_size:0", big, ""))
    cases.append(Case("topology", "documents:x_count:0", b"--- 1\n" * 20_001, ""))
    return cases
