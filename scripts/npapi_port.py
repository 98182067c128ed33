"""Restate the Network Policy API's own conformance tests as language-neutral cases (issue 17).

    python3 scripts/npapi_port.py NETWORK-POLICY-API-CHECKOUT > testbed/conformance/data/npapi.yaml

Reads kubernetes-sigs/network-policy-api's conformance/tests/*.go and their YAML under
conformance/base, and writes the cases testbed/conformance/npapi.py loads: per test, the steps
(each the whole set of policies in force after the test's mutations so far, and namespace labels)
and the pokes the test asserts at each step, all restated on the x/y/z model:

- houses -> namespaces: the subject's house -> x; the houses the rules name, in order of first
  appearance -> x (the first: its pods are x/c, beside the subject's x/a and x/b), y, z.
  Selectors by `kubernetes.io/metadata.name` name the namespace; `conformance-house` on a
  namespace becomes the model's `team` label (red on x, blue on y) or the namespace's name;
  a podSelector by `conformance-house` becomes {} (every pod of the house's namespace);
- pods <house>-0 / -1 -> a / b of the house's namespace (c for the house sharing x);
- ports: TCP 80 / 8080, UDP 53 / 5353, SCTP 9003 / 9005 -> 80 / 81 of that protocol; the
  named ports `web` (TCP 80) and `dns` (UDP 53) -> serve-80-tcp and serve-80-udp;
- a pod's /32 (inline CIDR tests) -> the model pod's address (the model pins its pods, so the
  addresses are fixed; a unit test checks them).

Mutations understood: swapping two rules, a rule's protocols replaced by a named port, a rule
prepended, a namespace relabelled. Not ported, and why, is written into the output's header.
Run once by hand; the output is committed, so the repository needs no network.
"""

from __future__ import annotations

import copy
import os
import re
import sys

import yaml

PORTS = {("TCP", 80): 80, ("TCP", 8080): 81, ("UDP", 53): 80, ("UDP", 5353): 81, ("SCTP", 9003): 80, ("SCTP", 9005): 81}
NAMED = {"web": "serve-80-tcp", "dns": "serve-80-udp"}
TEAM = {"x": ("team", "red"), "y": ("team", "blue")}
MODEL_IPS = {
    "z/a": "10.244.2.4",
    "z/b": "10.244.0.4",
}  # hufflepuff-0, ravenclaw-0  # data/xyz.yaml's pinned pods (checked by a unit test)
PREFIX = "network-policy-conformance-"

# (test file, case name, the named-port mutation: (direction, rule index, port name) or None)
TESTS = [
    (f"{tier}-network-policy-standard-{d}-{p}-rules.go", f"npapi-{t}-{d}-{p}", None)
    for tier, t in (("admin", "admin"), ("baseline-admin", "baseline"))
    for d in ("ingress", "egress")
    for p in ("tcp", "udp", "sctp")
] + [
    ("admin-network-policy-standard-gress-rules.go", "npapi-admin-gress", None),
    ("baseline-admin-network-policy-standard-gress-rules.go", "npapi-baseline-gress", None),
    ("admin-network-policy-standard-egress-inline-cidr-rules.go", "npapi-admin-egress-cidr", None),
    ("baseline-admin-network-policy-standard-egress-inline-cidr-rules.go", "npapi-baseline-egress-cidr", None),
    ("admin-network-policy-experimental-ingress-rules.go", "npapi-admin-ingress-named-port", ("ingress", 5, "dns")),
    (
        "baseline-admin-network-policy-experimental-ingress-rules.go",
        "npapi-baseline-ingress-named-port",
        ("ingress", 3, "web"),
    ),
    ("admin-network-policy-experimental-egress-rules.go", "npapi-admin-egress-named-port", ("egress", 5, "web")),
    (
        "baseline-admin-network-policy-experimental-egress-rules.go",
        "npapi-baseline-egress-named-port",
        ("egress", 3, "dns"),
    ),
]

NOT_PORTED = [
    "egress-node-peer subtests of admin/baseline-network-policy-experimental-egress-rules.go and their "
    "base/*/experimental-egress-selector-rules.yaml: they poke host-network servers on the nodes' ports; "
    "the conformance DSL measures pod-to-pod truth tables only (the oracle and the compiler do evaluate "
    "`nodes` peers: tests/unit/test_cnp_*.py)",
    "IPv6 (`::/0` in the inline-CIDR and selector files, the /128 branch): the testbed's clusters are "
    "IPv4 only; `::/0` is kept in the policies and matches nothing",
    "api_integration/standard-anp-np-banp and admin_tier/standard-priority-field: ported before, by "
    "hand, as npapi-anp-np-banp and npapi-priority-field (conformance/tiered.py)",
]


def house(text: str) -> str:
    return text.removeprefix(PREFIX)


def walk_peers(spec: dict) -> list[str]:
    """Houses the rules name, in order of first appearance (egress first, as the YAML files list them)."""
    seen: list[str] = []
    for d in ("egress", "ingress"):
        for rule in spec.get(d, []):
            for peer in rule.get("to", []) + rule.get("from", []):
                for m in re.findall(
                    r"network-policy-conformance-([a-z-]+)|'conformance-house': '([a-z-]+)'", str(peer)
                ):
                    h = m[0] or m[1]
                    if h not in seen:
                        seen.append(h)
    return seen


def subject_house(spec: dict) -> str:
    m = re.search(r"network-policy-conformance-([a-z-]+)|'conformance-house': '([a-z-]+)'", str(spec["subject"]))
    assert m, spec["subject"]
    return m.group(1) or m.group(2)


class Mapping:
    def __init__(self, subject: str, peers: list[str]) -> None:
        self.ns = {subject: "x"}
        others = [p for p in peers if p != subject]
        if len(others) == 3:  # four houses: the first named one shares x with the subject
            self.ns[others[0]] = "x"
            self.shared = others[0]
            others = others[1:]
        else:
            self.shared = None
        for h, n in zip(others, ("y", "z", "z")):
            self.ns.setdefault(h, n)

    def pod(self, name: str) -> str:
        h, _, i = name.rpartition("-")
        owner = next(k for k, v in HOUSE_PODS.items() if v == h)
        if owner not in self.ns:  # a house the rules never name (the inline-CIDR tests): z, after the rest
            extra = sorted(set(HOUSE_PODS) - set(self.ns))
            return f"z/{'ab'[extra.index(owner)] if i == '0' else 'c'}"
        n = self.ns[owner]
        if owner == self.shared:
            return f"{n}/c"
        return f"{n}/{'ab'[int(i)]}"


HOUSE_PODS = {
    "gryffindor": "harry-potter",
    "slytherin": "draco-malfoy",
    "hufflepuff": "cedric-diggory",
    "ravenclaw": "luna-lovegood",
}


def restate_selector(sel: dict, mapping: Mapping, on: str) -> dict:
    labels = dict(sel.get("matchLabels", {}))
    assert set(sel) <= {"matchLabels"}, sel
    out: dict[str, str] = {}
    for k, v in labels.items():
        if k == "kubernetes.io/metadata.name":
            out[k] = mapping.ns[house(v)]
        elif k == "conformance-house" and on == "namespace":
            n = mapping.ns[v]
            key, value = TEAM.get(n, ("kubernetes.io/metadata.name", n))
            out[key] = value
        elif k == "conformance-house" and on == "pod":
            pass  # every pod of the house's namespace
        else:
            raise ValueError(f"selector label {k}")
    return {"matchLabels": out} if out else {}


def restate_peer(peer: dict, mapping: Mapping) -> dict:
    if "namespaces" in peer:
        return {"namespaces": restate_selector(peer["namespaces"], mapping, "namespace")}
    if "pods" in peer:
        return {
            "pods": {
                "namespaceSelector": restate_selector(peer["pods"]["namespaceSelector"], mapping, "namespace"),
                "podSelector": restate_selector(peer["pods"]["podSelector"], mapping, "pod"),
            }
        }
    if "networks" in peer:
        return {"networks": list(peer["networks"])}
    raise ValueError(f"peer {peer}")


def restate_protocols(protocols: list[dict]) -> list[dict]:
    out = []
    for p in protocols:
        ((proto, body),) = p.items()
        if proto == "destinationNamedPort":
            out.append({"destinationNamedPort": NAMED[body]})
            continue
        number = body["destinationPort"]["number"]
        out.append({proto: {"destinationPort": {"number": PORTS[(proto.upper(), number)]}}})
    return out


def restate_policy(doc: dict, mapping: Mapping) -> dict:
    spec = doc["spec"]
    new: dict = {"tier": spec["tier"], "priority": spec["priority"]}
    subj = spec["subject"]
    new["subject"] = restate_peer(subj, mapping)
    for d, key in (("ingress", "from"), ("egress", "to")):
        if d in spec:
            rules = []
            for r in spec[d]:
                rule = {"name": r["name"], "action": r["action"], key: [restate_peer(p, mapping) for p in r[key]]}
                if "protocols" in r:
                    rule["protocols"] = restate_protocols(r["protocols"])
                rules.append(rule)
            new[d] = rules
    return {
        "apiVersion": doc["apiVersion"],
        "kind": doc["kind"],
        "metadata": {"name": doc["metadata"]["name"]},
        "spec": new,
    }


def events(go: str) -> list[tuple]:
    """(kind, ...) in source order: run, swap, named, prepend, nslabel, poke."""
    out: list[tuple] = []
    lines = go.splitlines()
    servers: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if m := re.match(r't\.Run\("([^"]+)"', line):
            out.append(("run", m.group(1)))
        if m := re.search(r'(\w+) :?= kubernetes\.GetPod\(t, s\.Client, "[\w-]+", "([\w-]+)"', line):
            servers[m.group(1)] = m.group(2)
        if m := re.match(r"(\w+) := mutate\.Spec\.(Ingress|Egress)\[(\d+)\]$", line):
            a = lines[i + 1].strip()
            if m2 := re.match(r"mutate\.Spec\.(\w+)\[(\d+)\] = mutate\.Spec\.(\w+)\[(\d+)\]", a):
                out.append(("swap", m.group(2).lower(), int(m2.group(2)), int(m2.group(4))))
                i += 3
                continue
        if re.search(r"PortRule := mutate(\.DeepCopy\(\))?\.Spec\.(Ingress|Egress)\[(\d+)\]", line):
            out.append(("named",))
        if "mutate.Spec.Egress = append(newRule" in line:
            out.append(("prepend",))
        if m := re.search(r'SetLabels\(map\[string\]string\{"conformance-house": "([\w-]+)"\}\)', line):
            out.append(("nslabel", m.group(1)))
        if m := re.search(r'PokeServer\(t, s\.ClientSet, &s\.KubeConfig, "[\w-]+", "([\w-]+)", "(\w+)",', line):
            nxt = lines[i + 1].strip()
            if m3 := re.match(r"(\w+)\.Status\.PodIP, int32\((\d+)\), s\.TimeoutConfig, (\w+)\)", nxt):
                out.append(
                    (
                        "poke",
                        m.group(1),
                        servers[m3.group(1)],
                        m.group(2).upper(),
                        int(m3.group(2)),
                        m3.group(3) == "true",
                    )
                )
            else:
                out.append(("node-poke",))
        i += 1
    return out


def port_test(root: str, filename: str, name: str, named: tuple | None) -> dict | None:
    go = open(os.path.join(root, "conformance", "tests", filename), encoding="utf-8").read()
    manifests = re.findall(r"Manifests:\s*\[\]string\{([^}]*)\}", go)[0]
    files = [f for f in re.findall(r'"([^"]+)"', manifests) if "experimental-egress-selector" not in f]
    docs = [d for f in files for d in yaml.safe_load_all(open(os.path.join(root, "conformance", f), encoding="utf-8"))]
    assert len(docs) == 1, (filename, files)
    original = docs[0]
    mapping = Mapping(subject_house(original["spec"]), walk_peers(original["spec"]))
    short = re.search(r'ShortName:\s*"(\w+)"', go).group(1)
    policy = copy.deepcopy(original)
    ns_labels: dict[str, dict[str, str]] = {}
    steps: list[dict] = []
    current: dict = {"subtests": [], "pokes": []}
    subtest = ""

    def close(note: str) -> None:
        """End the step (if it was poked) before a mutation described by `note`."""
        nonlocal current
        if not current["pokes"]:  # two mutations in a row: one step
            current["note"] = "; ".join(n for n in (current["note"], note) if n)
            return
        current["policies"] = [restate_policy(policy, mapping)]
        if ns_labels:
            current["namespaceLabels"] = copy.deepcopy(ns_labels)
        steps.append(current)
        current = {"subtests": [], "pokes": [], "note": note}

    current["note"] = f"{files[0]} as written"
    for ev in events(go):
        if ev[0] == "run":
            subtest = ev[1]
        elif ev[0] == "swap":
            close(f"{ev[1]} rules {ev[2]} and {ev[3]} swapped")
            rules = policy["spec"][ev[1]]
            rules[ev[2]], rules[ev[3]] = rules[ev[3]], rules[ev[2]]
        elif ev[0] == "named":
            d, index, port = named
            close(f"{d} rule {index}'s protocols replaced by destinationNamedPort {port}")
            policy["spec"][d][index]["protocols"] = [{"destinationNamedPort": port}]
        elif ev[0] == "prepend":
            close("an Accept rule to two pods' /32 prepended to the egress rules")
            ips = [f"{MODEL_IPS[p]}/32" for p in ("z/b", "z/a")]  # ravenclaw-0, hufflepuff-0
            policy["spec"]["egress"].insert(
                0, {"name": "allow-egress-to-specific-podIPs", "action": "Accept", "to": [{"networks": ips}]}
            )
        elif ev[0] == "nslabel":
            n = mapping.ns["slytherin"]
            close(f"namespace {n} (slytherin) relabelled conformance-house={ev[1]}")
            if ev[1] == "slytherin":
                ns_labels.pop(n, None)
            else:
                ns_labels[n] = {"ns": n, "team": ev[1]}
        elif ev[0] == "poke":
            _, src, dst, proto, port, want = ev
            current["pokes"].append([mapping.pod(src), mapping.pod(dst), proto, PORTS[(proto, port)], want])
            if subtest not in current["subtests"]:
                current["subtests"].append(subtest)
    close("")
    houses = {h: n for h, n in sorted(mapping.ns.items())}
    return {
        "name": name,
        "upstream": f"conformance/tests/{filename} ({short})",
        "base": files,
        "houses": houses,
        "steps": steps,
    }


def main() -> None:
    root = sys.argv[1]
    cases = [port_test(root, f, n, named) for f, n, named in TESTS]
    header = (
        "# The Network Policy API's own conformance tests (kubernetes-sigs/network-policy-api, main),\n"
        "# restated on the x/y/z model by scripts/npapi_port.py (see its docstring for the mapping).\n"
        "# Each case: the upstream test, the houses' namespaces, and steps: the policies in force (whole),\n"
        "# namespace labels that differ from the model, and the pokes the upstream test asserts at that\n"
        "# step as [from, to, protocol, port, connected]. testbed/conformance/npapi.py loads this file.\n"
        "# Not ported:\n" + "".join(f"#   - {n}\n" for n in NOT_PORTED)
    )
    sys.stdout.write(header + yaml.safe_dump({"cases": cases}, sort_keys=False, width=120, default_flow_style=None))


if __name__ == "__main__":
    main()
