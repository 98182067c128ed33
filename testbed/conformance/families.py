"""The systematic families of conformance cases, and the vocabulary they draw from; pure.

Seventeen families, each a list of Drafts (dsl.py): deny, allow-all, pod and namespace
selectors, AND vs OR peers, ipBlock, ports, several policies, other namespaces, ingress vs
egress, policyTypes, and the multi-step ones (apply, update, delete a policy, relabel a pod or
a namespace, longer sequences). generator.py decodes and orders them, and adds random ones.

ipBlock cases (a choice, documented here): the generator does not know pod IPs, so ipBlocks
are written against the pod CIDRs of the default 3-node topology, which the model pins its
pods to with nodeName (three pods per node, one of each namespace): 10.244.0.0/24
(kind-control-plane: x/a y/c z/b), 10.244.1.0/24 (kind-worker: x/b y/a z/c), 10.244.2.0/24
(kind-worker2: x/c y/b z/a), their unions and 10.244.0.0/16 with excepts, and ranges that hold
no pod at all (the underlay 192.168.1.0/24, 0.0.0.0/0 except 10.244.0.0/16). No case needs
an address resolved at run time. The expected tables never assume a placement either: they
are computed by the oracle from the actual World (real IPs from the plan), so on another
topology a case stays correct, only less sharp.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .dsl import ALL, Draft, Seq, allow, block, both, deny, ex, ml, netpol, nss, pods, port, rule, single
from .xyz import MODEL_UNDERLAY, NAMESPACES, NODE_CIDRS, POD_NETWORK

# -- the vocabulary --------------------------------------------------------------------------------

# Peer pod selectors: (short name, selector, words)
POD_SELECTORS = (
    ("pod-b", ml(pod="b"), "pods labelled pod=b"),
    ("in-a-b", ex("pod", "In", "a", "b"), "pods with pod in (a, b)"),
    ("notin-a", ex("pod", "NotIn", "a"), "pods with pod not in (a)"),
    ("has-tier", ex("tier", "Exists"), "pods with a tier label"),
    ("no-tier", ex("tier", "DoesNotExist"), "pods without a tier label (the c pods)"),
    ("web-not-c", ex("pod", "NotIn", "c", labels={"tier": "web"}), "pods with tier=web and pod not in (c)"),
    ("all", ALL, "every pod (podSelector {})"),
)
NS_SELECTORS = (
    ("ns-y", ml(ns="y"), "namespaces labelled ns=y"),
    ("all", ALL, "every namespace (namespaceSelector {})"),
    ("in-x-z", ex("ns", "In", "x", "z"), "namespaces with ns in (x, z)"),
    ("notin-y", ex("ns", "NotIn", "y"), "namespaces with ns not in (y)"),
    ("has-team", ex("team", "Exists"), "namespaces with a team label (x, y)"),
    ("no-team", ex("team", "DoesNotExist"), "namespaces without a team label (z)"),
    ("name-z", ml(**{"kubernetes.io/metadata.name": "z"}), "namespace z by its metadata.name label"),
)
TARGETS = (
    ("all", ALL, "every pod"),
    ("pod-a", ml(pod="a"), "pod a"),
    ("no-tier", ex("tier", "DoesNotExist"), "pods without tier (c)"),
    ("in-a-c", ex("pod", "In", "a", "c"), "pods a and c"),
)
IP_BLOCKS = (
    ("pod-network", block(POD_NETWORK), "the whole pod network"),
    ("node1", block(NODE_CIDRS["kind-worker"]), "kind-worker's pod CIDR (x/b, y/a, z/c)"),
    ("all-but-node1", block(POD_NETWORK, NODE_CIDRS["kind-worker"]), "the pod network except kind-worker's pods"),
    (
        "only-node1",
        block(POD_NETWORK, NODE_CIDRS["kind-control-plane"], NODE_CIDRS["kind-worker2"]),
        "the pod network except two nodes' CIDRs (= kind-worker's pods)",
    ),
    ("outside", block("0.0.0.0/0", POD_NETWORK), "everything but the pod network (no pod)"),
    (
        "node0-1-not-0",
        block("10.244.0.0/23", NODE_CIDRS["kind-control-plane"]),
        "10.244.0.0/23 except the control plane's CIDR (= kind-worker's pods)",
    ),
    ("underlay", block(MODEL_UNDERLAY), "the node network (no pod)"),
)
PORT_SPECS = (
    ("tcp-80", [port(80)], "TCP 80 (protocol defaulted)"),
    ("udp-81", [port(81, "UDP")], "UDP 81"),
    ("sctp-80", [port(80, "SCTP")], "SCTP 80"),
    ("udp-any", [port(None, "UDP")], "every UDP port"),
    ("name-81-tcp", [port("serve-81-tcp")], "the port named serve-81-tcp"),
    ("name-80-udp", [port("serve-80-udp", "UDP")], "UDP port named serve-80-udp"),
    ("name-81-sctp", [port("serve-81-sctp", "SCTP")], "SCTP port named serve-81-sctp"),
    ("name-wrong-proto", [port("serve-80-tcp", "UDP")], "UDP port named serve-80-tcp (no such UDP port)"),
    ("range-80-81", [port(80, "TCP", 81)], "TCP 80-81 (both inside)"),
    ("range-81-90-udp", [port(81, "UDP", 90)], "UDP 81-90 (81 inside, 80 outside)"),
    ("range-1-80-sctp", [port(1, "SCTP", 80)], "SCTP 1-80 (80 inside, 81 outside)"),
    ("range-82-100", [port(82, "TCP", 100)], "TCP 82-100 (neither)"),
    ("tcp-80-sctp-81", [port(80, "TCP"), port(81, "SCTP")], "TCP 80 or SCTP 81"),
)


def _rot(seq: tuple[Any, ...], i: int) -> Any:
    return seq[i % len(seq)]


# -- the families ----------------------------------------------------------------------------------


def fam_deny() -> list[Draft]:
    out = []
    for direction in ("ingress", "egress", "both"):
        for ns in NAMESPACES:
            for tname, target, twords in (TARGETS[0], TARGETS[1]):
                name = f"deny-{direction}-{ns}-{tname}"
                if direction == "ingress" and tname == "all":
                    doc = netpol(name, ns)  # policyTypes inferred: Ingress
                else:
                    doc = deny(name, ns, direction, target)
                what = {"ingress": "all ingress", "egress": "all egress", "both": "all ingress and egress"}[direction]
                out.append(single("deny", name, f"Deny {what} of {twords} in namespace {ns}.", doc))
    return out


def fam_allow_all() -> list[Draft]:
    out = []
    for ns in NAMESPACES:
        out += [
            single(
                "allow-all",
                f"allow-all-ingress-{ns}",
                f"Every pod of {ns} isolated for ingress, and allowed from anywhere (ingress: [{{}}]).",
                netpol("allow-all-in", ns, ingress=[rule()]),
            ),
            single(
                "allow-all",
                f"allow-all-egress-{ns}",
                f"Every pod of {ns} isolated for egress, and allowed to anywhere (egress: [{{}}]).",
                allow("allow-all-out", ns, "egress", ALL, [rule()]),
            ),
            single(
                "allow-all",
                f"deny-both-allow-ingress-{ns}",
                f"{ns}: deny both directions, plus allow all ingress: policies add up, egress stays denied.",
                deny("deny-all", ns, "both"),
                netpol("allow-all-in", ns, ingress=[rule()]),
            ),
            single(
                "allow-all",
                f"deny-both-allow-egress-{ns}",
                f"{ns}: deny both directions, plus allow all egress: ingress stays denied.",
                deny("deny-all", ns, "both"),
                allow("allow-all-out", ns, "egress", ALL, [rule()]),
            ),
            single(
                "allow-all",
                f"deny-allow-all-namespaces-{ns}",
                f"{ns}: deny ingress, then allow from every pod of every namespace (namespaceSelector {{}}).",
                deny("deny-in", ns),
                netpol("allow-cluster", ns, ingress=[rule([nss(ALL)])]),
            ),
        ]
    return out


def _peer_family(
    family: str, selectors: tuple[Any, ...], make_peer: Callable[..., Any], ns_list: tuple[str, ...], what: str
) -> list[Draft]:
    out, i = [], 0
    for sname, sel, words in selectors:
        for direction in ("ingress", "egress"):
            for ns in ns_list:
                tname, target, twords = _rot(TARGETS, i)
                i += 1
                name = f"{family}-{direction}-{ns}-{sname}-{tname}"
                word = "from" if direction == "ingress" else "to"
                out.append(
                    single(
                        family,
                        name,
                        f"{ns}: {direction} of {twords} only {word} {words}{what}.",
                        allow(name, ns, direction, target, [rule([make_peer(sel)])]),
                    )
                )
    return out


def fam_pod_selector() -> list[Draft]:
    return _peer_family("pod-selector", POD_SELECTORS, pods, ("x", "z"), " of their own namespace")


def fam_namespace_selector() -> list[Draft]:
    return _peer_family("namespace-selector", NS_SELECTORS, nss, ("x", "y"), "")


def fam_and_or() -> list[Draft]:
    pairs = (
        (NS_SELECTORS[0], POD_SELECTORS[0]),
        (NS_SELECTORS[1], POD_SELECTORS[1]),
        (NS_SELECTORS[4], POD_SELECTORS[4]),
        (NS_SELECTORS[3], POD_SELECTORS[2]),
        (NS_SELECTORS[2], POD_SELECTORS[3]),
    )
    out = []
    for i, ((nname, nsel, nwords), (pname, psel, pwords)) in enumerate(pairs):
        for direction in ("ingress", "egress"):
            ns = _rot(NAMESPACES, i)
            tname, target, twords = _rot(TARGETS, i + (direction == "egress"))
            word = "from" if direction == "ingress" else "to"
            for mode in ("and", "or"):
                name = f"{mode}-{direction}-{ns}-{nname}-{pname}"
                peers = [both(nsel, psel)] if mode == "and" else [nss(nsel), pods(psel)]
                join = (
                    f"{pwords} in {nwords} (one peer: AND)"
                    if mode == "and"
                    else f"{nwords}, or {pwords} of {ns} (two peers: OR)"
                )
                out.append(
                    single(
                        "and-or",
                        name,
                        f"{ns}: {direction} of {twords} only {word} {join}.",
                        allow(name, ns, direction, target, [rule(peers)]),
                    )
                )
    return out


def fam_ip_block() -> list[Draft]:
    out, i = [], 0
    for bname, peer, words in IP_BLOCKS:
        for direction in ("ingress", "egress"):
            for ns in ("x", "z"):
                tname, target, twords = _rot(TARGETS, i)
                i += 1
                name = f"ipblock-{direction}-{ns}-{bname}-{tname}"
                word = "from" if direction == "ingress" else "to"
                out.append(
                    single(
                        "ip-block",
                        name,
                        f"{ns}: {direction} of {twords} only {word} {words}.",
                        allow(name, ns, direction, target, [rule([peer])]),
                    )
                )
    return out


def fam_ports() -> list[Draft]:
    out = []
    for i, (pname, ports, words) in enumerate(PORT_SPECS):
        for direction in ("ingress", "egress"):
            ns = _rot(NAMESPACES, i + (direction == "egress"))
            # every third case restricts peers too, so ports meet selectors
            peers = [nss(ml(ns="y"))] if i % 3 == 2 else None
            name = f"ports-{direction}-{ns}-{pname}"
            extra = " from/to namespace y only" if peers else ""
            out.append(
                single(
                    "ports",
                    name,
                    f"{ns}: every pod accepts {direction} only on {words}{extra}.",
                    allow(name, ns, direction, ALL, [rule(peers, ports)]),
                )
            )
    return out


def fam_multiple() -> list[Draft]:
    f = "multiple-policies"
    return [
        single(
            f,
            "add-two-ingress-x",
            "x/a: one policy allows pod b on TCP 80, another namespace y on UDP 81; together both.",
            allow("from-b", "x", "ingress", ml(pod="a"), [rule([pods(ml(pod="b"))], [port(80)])]),
            allow("from-y", "x", "ingress", ml(pod="a"), [rule([nss(ml(ns="y"))], [port(81, "UDP")])]),
        ),
        single(
            f,
            "deny-plus-allow-x",
            "x: deny all ingress, plus allow ingress to c from z on SCTP.",
            deny("deny", "x"),
            allow("c-from-z", "x", "ingress", ml(pod="c"), [rule([nss(ml(ns="z"))], [port(None, "SCTP")])]),
        ),
        single(
            f,
            "three-policies-y",
            "y: three ingress policies for b, each allowing one namespace on one protocol.",
            allow("x-tcp", "y", "ingress", ml(pod="b"), [rule([nss(ml(ns="x"))], [port(None, "TCP")])]),
            allow("y-udp", "y", "ingress", ml(pod="b"), [rule([nss(ml(ns="y"))], [port(None, "UDP")])]),
            allow("z-sctp", "y", "ingress", ml(pod="b"), [rule([nss(ml(ns="z"))], [port(None, "SCTP")])]),
        ),
        single(
            f,
            "overlapping-targets-z",
            "z: one policy selects a and b, another b and c, with different peers.",
            allow("ab", "z", "ingress", ex("pod", "In", "a", "b"), [rule([pods(ml(pod="c"))])]),
            allow("bc", "z", "ingress", ex("pod", "In", "b", "c"), [rule([nss(ml(ns="x"))])]),
        ),
        single(
            f,
            "egress-add-up-x",
            "x: two egress policies on every pod: to y on TCP, to z on 81.",
            allow("to-y", "x", "egress", ALL, [rule([nss(ml(ns="y"))], [port(None, "TCP")])]),
            allow(
                "to-z",
                "x",
                "egress",
                ALL,
                [rule([nss(ml(ns="z"))], [port(81, "TCP"), port(81, "UDP"), port(81, "SCTP")])],
            ),
        ),
        single(
            f,
            "two-rules-one-policy-y",
            "y/a: one policy with two ingress rules (rules add up too).",
            netpol(
                "two-rules",
                "y",
                ml(pod="a"),
                ingress=[rule([pods(ml(pod="b"))], [port(80)]), rule([nss(ml(ns="z"))], [port(81, "UDP")])],
            ),
        ),
        single(
            f,
            "allow-all-wins-z",
            "z/b: a narrow policy and an allow-all policy: allow-all wins.",
            allow("narrow", "z", "ingress", ml(pod="b"), [rule([pods(ml(pod="a"))], [port(80)])]),
            allow("wide", "z", "ingress", ml(pod="b"), [rule()]),
        ),
        single(
            f,
            "deny-everything-everywhere",
            "Deny both directions in x, y and z: only self traffic remains.",
            deny("deny-all", "x", "both"),
            deny("deny-all", "y", "both"),
            deny("deny-all", "z", "both"),
        ),
        single(
            f,
            "deny-ingress-everywhere-allow-x-out",
            "Deny ingress in every namespace, allow x's pods into y/a.",
            deny("deny-in", "x"),
            deny("deny-in", "y"),
            deny("deny-in", "z"),
            allow("from-x", "y", "ingress", ml(pod="a"), [rule([nss(ml(ns="x"))])]),
        ),
        single(
            f,
            "ports-split-across-policies-x",
            "x/b: TCP 80 allowed by one policy, TCP 81 by another (named), both from x.",
            allow("p80", "x", "ingress", ml(pod="b"), [rule([pods(ALL)], [port(80)])]),
            allow("p81", "x", "ingress", ml(pod="b"), [rule([pods(ALL)], [port("serve-81-tcp")])]),
        ),
    ]


def fam_other_namespace() -> list[Draft]:
    f = "other-namespace"
    return [
        single(
            f,
            "deny-in-y-leaves-x",
            "A deny-all in y selects pods labelled pod=a of y only, not x/a or z/a.",
            deny("deny-a", "y", "both", ml(pod="a")),
        ),
        single(
            f,
            "peer-names-x-policy-in-z",
            "A policy in z whose peers are x's pods does not isolate x.",
            allow("from-x", "z", "ingress", ml(pod="b"), [rule([nss(ml(ns="x"))])]),
        ),
        single(
            f,
            "egress-in-x-ingress-untouched-y",
            "An egress policy in x towards y: y's pods stay unisolated for ingress.",
            allow("to-y-a", "x", "egress", ALL, [rule([both(ml(ns="y"), ml(pod="a"))])]),
        ),
        single(
            f,
            "pod-selector-peer-is-own-namespace",
            "x/a allows from podSelector pod=b: x/b only, not y/b or z/b.",
            allow("from-b", "x", "ingress", ml(pod="a"), [rule([pods(ml(pod="b"))])]),
        ),
        single(
            f,
            "same-name-other-namespaces",
            "Policies with the same name in y and z select their own pods.",
            deny("same", "y", "ingress", ml(pod="c")),
            allow("same", "z", "egress", ml(pod="c"), [rule([nss(ml(ns="y"))])]),
        ),
        single(
            f,
            "policy-in-z-selects-nothing",
            "A policy in z selecting a label no pod has isolates nobody.",
            deny("nobody", "z", "both", ml(pod="nobody")),
        ),
    ]


def fam_ingress_egress() -> list[Draft]:
    f = "ingress-egress"
    ya = ml(pod="a")
    return [
        single(
            f,
            "egress-deny-x-ingress-allow-y",
            "x denies egress; y/a allows ingress from x: x->y/a blocked at x's egress.",
            deny("deny-out", "x", "egress"),
            allow("from-x", "y", "ingress", ya, [rule([nss(ml(ns="x"))])]),
        ),
        single(
            f,
            "egress-allow-x-ingress-deny-y",
            "x allows egress to y only; y denies ingress: blocked at y.",
            allow("to-y", "x", "egress", ALL, [rule([nss(ml(ns="y"))])]),
            deny("deny-in", "y"),
        ),
        single(
            f,
            "both-allow-x-to-y",
            "x allows egress to y on TCP 80, y/a allows ingress from x on TCP 80-81.",
            allow("to-y", "x", "egress", ALL, [rule([nss(ml(ns="y"))], [port(80)])]),
            allow("from-x", "y", "ingress", ya, [rule([nss(ml(ns="x"))], [port(80, "TCP", 81)])]),
        ),
        single(
            f,
            "one-policy-both-directions-z",
            "z/c: one policy with ingress from z and egress to x (both types).",
            netpol(
                "both",
                "z",
                ml(pod="c"),
                ingress=[rule([pods(ALL)])],
                egress=[rule([nss(ml(ns="x"))])],
                types=["Ingress", "Egress"],
            ),
        ),
        single(
            f,
            "egress-udp-ingress-tcp",
            "x egress allows UDP only; y ingress allows TCP only: x->y nothing.",
            allow("udp-out", "x", "egress", ALL, [rule(None, [port(None, "UDP")])]),
            allow("tcp-in", "y", "ingress", ALL, [rule(None, [port(None, "TCP")])]),
        ),
        single(
            f,
            "intra-namespace-both-x",
            "x: ingress and egress limited to x's own pods.",
            netpol(
                "internal",
                "x",
                ALL,
                ingress=[rule([pods(ALL)])],
                egress=[rule([pods(ALL)])],
                types=["Ingress", "Egress"],
            ),
        ),
        single(
            f,
            "egress-ipblock-ingress-selector",
            "y egress to kind-worker's CIDR; z ingress from y's pod a.",
            allow("to-node1", "y", "egress", ALL, [rule([block(NODE_CIDRS["kind-worker"])])]),
            allow("from-ya", "z", "ingress", ALL, [rule([both(ml(ns="y"), ml(pod="a"))])]),
        ),
        single(
            f,
            "egress-named-port-ingress-range",
            "x egress to named serve-81-sctp; y ingress SCTP 80-81.",
            allow("named-out", "x", "egress", ALL, [rule(None, [port("serve-81-sctp", "SCTP")])]),
            allow("range-in", "y", "ingress", ALL, [rule(None, [port(80, "SCTP", 81)])]),
        ),
    ]


def fam_policy_types() -> list[Draft]:
    f = "policy-types"
    return [
        single(
            f,
            "types-inferred-from-egress-x",
            "x/a: no policyTypes, egress rules: Ingress and Egress inferred, so ingress is denied.",
            netpol("inferred", "x", ml(pod="a"), egress=[rule([pods(ALL)])]),
        ),
        single(
            f,
            "egress-type-ignores-ingress-rules-y",
            "y/b: policyTypes [Egress] with ingress rules: those are ignored.",
            netpol(
                "egress-only",
                "y",
                ml(pod="b"),
                ingress=[rule([pods(ml(pod="nobody"))])],
                egress=[rule([nss(ALL)])],
                types=["Egress"],
            ),
        ),
        single(
            f,
            "ingress-type-ignores-egress-rules-z",
            "z: policyTypes [Ingress] with egress rules: egress is not isolated.",
            netpol(
                "ingress-only",
                "z",
                ALL,
                ingress=[rule([pods(ALL)])],
                egress=[rule([pods(ml(pod="nobody"))])],
                types=["Ingress"],
            ),
        ),
        single(
            f,
            "both-types-no-rules-x",
            "x/c: policyTypes [Ingress, Egress] and no rules: deny both.",
            deny("deny-c", "x", "both", ml(pod="c")),
        ),
        single(
            f,
            "empty-egress-list-y",
            "y: `egress: []` without policyTypes: Ingress only is inferred.",
            netpol("empty-egress", "y", ALL, ingress=[rule([pods(ALL)])], egress=[]),
        ),
        single(
            f,
            "inferred-ingress-with-rules-z",
            "z/a: no policyTypes, ingress rules only: Ingress inferred.",
            netpol("inferred-in", "z", ml(pod="a"), ingress=[rule([nss(ml(ns="x"))], [port(81)])]),
        ),
        single(
            f,
            "egress-type-empty-rules-x",
            "x: policyTypes [Egress], no rules at all: deny all egress.",
            netpol("deny-out", "x", ALL, types=["Egress"]),
        ),
        single(
            f,
            "egress-type-ignores-allow-all-x",
            "x/a: policyTypes [Egress] with `ingress: [{}]`: the allow-all ingress rule is ignored, egress to y only.",
            netpol(
                "egress-only", "x", ml(pod="a"), ingress=[rule()], egress=[rule([nss(ml(ns="y"))])], types=["Egress"]
            ),
        ),
        single(
            f,
            "ingress-type-ignores-ipblock-egress-z",
            "z/b: policyTypes [Ingress] with an ipBlock egress rule (ignored) and ingress on UDP only.",
            netpol(
                "ingress-only",
                "z",
                ml(pod="b"),
                ingress=[rule(None, [port(None, "UDP")])],
                egress=[rule([block(NODE_CIDRS["kind-worker"])])],
                types=["Ingress"],
            ),
        ),
        single(
            f,
            "egress-type-ignores-ingress-ports-y",
            "y: policyTypes [Egress], ingress rule on SCTP 80 (ignored), egress on TCP 80-81.",
            netpol(
                "egress-tcp",
                "y",
                ALL,
                ingress=[rule(None, [port(80, "SCTP")])],
                egress=[rule(None, [port(80, "TCP", 81)])],
                types=["Egress"],
            ),
        ),
        single(
            f,
            "inferred-both-with-ports-y",
            "y/c: no policyTypes, ingress and egress rules with ports.",
            netpol(
                "both-inferred",
                "y",
                ml(pod="c"),
                ingress=[rule(None, [port(80)])],
                egress=[rule(None, [port(81, "UDP")])],
            ),
        ),
    ]


# Policies multi-step cases reuse.
def _deny_x() -> dict[str, Any]:
    return deny("deny-in", "x")


def _from_role_admin() -> dict[str, Any]:
    return allow("from-admins", "x", "ingress", ml(pod="a"), [rule([both(ALL, ml(role="admin"))])])


def fam_apply() -> list[Draft]:
    f = "apply-policy"
    out = []
    picks = [
        ("deny-x", "deny all ingress in x", [_deny_x()]),
        ("deny-y-egress", "deny all egress in y", [deny("deny-out", "y", "egress")]),
        (
            "pod-selector-z",
            "z/a accepts only z/b",
            [allow("from-b", "z", "ingress", ml(pod="a"), [rule([pods(ml(pod="b"))])])],
        ),
        (
            "ns-selector-x",
            "x accepts only from team=blue namespaces",
            [allow("from-blue", "x", "ingress", ALL, [rule([nss(ml(team="blue"))])])],
        ),
        (
            "ipblock-y",
            "y egress only to kind-worker2's CIDR",
            [allow("to-node2", "y", "egress", ALL, [rule([block(NODE_CIDRS["kind-worker2"])])])],
        ),
        ("ports-z", "z accepts only UDP 81", [allow("udp-81", "z", "ingress", ALL, [rule(None, [port(81, "UDP")])])]),
        (
            "named-x",
            "x/b accepts only serve-80-sctp",
            [allow("named", "x", "ingress", ml(pod="b"), [rule(None, [port("serve-80-sctp", "SCTP")])])],
        ),
        (
            "range-y",
            "y egress only on TCP 81-82",
            [allow("range", "y", "egress", ALL, [rule(None, [port(81, "TCP", 82)])])],
        ),
    ]
    for i, (name, words, docs) in enumerate(picks):
        seq = Seq()
        if i % 2:  # start from another policy already in force
            seq.apply(deny("deny-c", "z", "ingress", ml(pod="c")))
        seq.step("initial state" if i % 2 else "no policy")
        seq.apply(*docs).step()
        out.append(Draft(f, f"apply-{name}", f"Apply mid-case: {words}.", seq))
    return out


def fam_update() -> list[Draft]:
    f = "update-policy"
    upd = []

    def case(name: str, words: str, before: dict[str, Any], *after: dict[str, Any]) -> None:
        seq = Seq().apply(before).step()
        for doc in after:
            seq.apply(doc).step()
        upd.append(Draft(f, f"update-{name}", f"Change a policy in place: {words}.", seq))

    case(
        "target",
        "x: deny ingress to a, then to b",
        deny("deny", "x", "ingress", ml(pod="a")),
        deny("deny", "x", "ingress", ml(pod="b")),
    )
    case(
        "direction",
        "y: deny ingress, then egress, then both",
        deny("deny", "y", "ingress"),
        deny("deny", "y", "egress"),
        deny("deny", "y", "both"),
    )
    case(
        "peer-pod",
        "z/a from z/b, then from z/c",
        allow("p", "z", "ingress", ml(pod="a"), [rule([pods(ml(pod="b"))])]),
        allow("p", "z", "ingress", ml(pod="a"), [rule([pods(ml(pod="c"))])]),
    )
    case(
        "peer-namespace",
        "x from ns y, then from ns z",
        allow("p", "x", "ingress", ALL, [rule([nss(ml(ns="y"))])]),
        allow("p", "x", "ingress", ALL, [rule([nss(ml(ns="z"))])]),
    )
    case(
        "port-protocol",
        "y on TCP 80, then UDP 80, then SCTP 80",
        allow("p", "y", "ingress", ALL, [rule(None, [port(80)])]),
        allow("p", "y", "ingress", ALL, [rule(None, [port(80, "UDP")])]),
        allow("p", "y", "ingress", ALL, [rule(None, [port(80, "SCTP")])]),
    )
    case(
        "and-to-or",
        "z/b from ns x AND pod a, then ns x OR pod a",
        allow("p", "z", "ingress", ml(pod="b"), [rule([both(ml(ns="x"), ml(pod="a"))])]),
        allow("p", "z", "ingress", ml(pod="b"), [rule([nss(ml(ns="x")), pods(ml(pod="a"))])]),
    )
    case(
        "ipblock-except",
        "x egress to the pod network, then except kind-worker",
        allow("p", "x", "egress", ALL, [rule([block(POD_NETWORK)])]),
        allow("p", "x", "egress", ALL, [rule([block(POD_NETWORK, NODE_CIDRS["kind-worker"])])]),
    )
    case(
        "end-port",
        "y/a TCP 80 only, then 80-81, then 81-81",
        allow("p", "y", "ingress", ml(pod="a"), [rule(None, [port(80)])]),
        allow("p", "y", "ingress", ml(pod="a"), [rule(None, [port(80, "TCP", 81)])]),
        allow("p", "y", "ingress", ml(pod="a"), [rule(None, [port(81, "TCP", 81)])]),
    )
    case(
        "expression-operator",
        "x/c from pods with pod In (a), then NotIn (a)",
        allow("p", "x", "ingress", ml(pod="c"), [rule([pods(ex("pod", "In", "a"))])]),
        allow("p", "x", "ingress", ml(pod="c"), [rule([pods(ex("pod", "NotIn", "a"))])]),
    )
    case(
        "allow-all-to-deny",
        "z: allow all ingress, then no rule (deny)",
        netpol("p", "z", ALL, ingress=[rule()]),
        netpol("p", "z", ALL, types=["Ingress"]),
    )
    return upd


def fam_delete() -> list[Draft]:
    f = "delete-policy"
    out = []
    specs = [
        ("deny-x", [_deny_x()], [("x", "deny-in")]),
        ("deny-both-y", [deny("deny-all", "y", "both")], [("y", "deny-all")]),
        (
            "allow-keeps-isolation",
            [deny("deny", "z"), allow("allow", "z", "ingress", ALL, [rule([pods(ALL)])])],
            [("z", "allow")],
        ),
        ("deny-of-two", [deny("deny", "z"), allow("allow", "z", "ingress", ALL, [rule([pods(ALL)])])], [("z", "deny")]),
        ("egress-x", [allow("to-y", "x", "egress", ALL, [rule([nss(ml(ns="y"))])])], [("x", "to-y")]),
        ("one-of-three-ns", [deny("d", "x"), deny("d", "y"), deny("d", "z")], [("y", "d")]),
        ("ports-y", [allow("p", "y", "ingress", ml(pod="b"), [rule(None, [port(81, "SCTP")])])], [("y", "p")]),
        (
            "ipblock-z",
            [allow("p", "z", "egress", ALL, [rule([block(POD_NETWORK, NODE_CIDRS["kind-worker2"])])])],
            [("z", "p")],
        ),
    ]
    for name, docs, gone in specs:
        seq = Seq().apply(*docs).step()
        for ns, pname in gone:
            seq.delete(ns, pname)
        seq.step()
        out.append(Draft(f, f"delete-{name}", "Delete " + ", ".join(f"{a}/{b}" for a, b in gone) + " mid-case.", seq))
    return out


def _relabelling(
    out: list[Draft], family: str, prefix: str, label: Callable[[Seq, str, Mapping[str, str | None]], Seq]
) -> Callable[..., None]:
    """case(name, words, docs, changes): apply `docs`, then one step per (pod or namespace, labels) change."""

    def case(name: str, words: str, docs: list[dict[str, Any]], changes: list[tuple[str, dict[str, Any]]]) -> None:
        seq = Seq().apply(*docs).step()
        for key, ch in changes:
            label(seq, key, ch).step()
        out.append(Draft(family, f"{prefix}-{name}", words, seq))

    return case


def fam_relabel_pod() -> list[Draft]:
    out: list[Draft] = []
    case = _relabelling(out, "relabel-pod", "relabel-pod", Seq.label_pod)

    case(
        "peer-gains-role",
        "x/a accepts role=admin pods of any namespace; y/b gains the label, then loses it.",
        [_from_role_admin()],
        [("y/b", {"role": "admin"}), ("y/b", {"role": None})],
    )
    case(
        "target-gains-selection",
        "x denies ingress to pod=a; x/c is relabelled pod=a, then back.",
        [deny("deny-a", "x", "ingress", ml(pod="a"))],
        [("x/c", {"pod": "a"}), ("x/c", {"pod": "c"})],
    )
    case(
        "target-loses-selection",
        "y denies ingress to tier=web; y/a loses its tier, then gets tier=db.",
        [deny("deny-web", "y", "ingress", ml(tier="web"))],
        [("y/a", {"tier": None}), ("y/a", {"tier": "db"})],
    )
    case(
        "doesnotexist-peer",
        "z accepts only pods without tier; z/a loses tier, x/c gains one.",
        [allow("no-tier", "z", "ingress", ALL, [rule([both(ALL, ex("tier", "DoesNotExist"))])])],
        [("z/a", {"tier": None}), ("x/c", {"tier": "web"})],
    )
    case(
        "notin-egress",
        "x egress only to pods with pod NotIn (b); y/b becomes pod=e.",
        [allow("not-b", "x", "egress", ALL, [rule([both(ALL, ex("pod", "NotIn", "b"))])])],
        [("y/b", {"pod": "e"})],
    )
    case(
        "in-target-egress",
        "y: pods with pod In (a, b) may not send; y/c becomes pod=b, then y/a pod=z.",
        [deny("deny-ab", "y", "egress", ex("pod", "In", "a", "b"))],
        [("y/c", {"pod": "b"}), ("y/a", {"pod": "z"})],
    )
    case(
        "exists-peer-and-ports",
        "z/b accepts TCP 81 from pods with role; x/b then z/c gain role.",
        [allow("role-81", "z", "ingress", ml(pod="b"), [rule([both(ALL, ex("role", "Exists"))], [port(81)])])],
        [("x/b", {"role": "client"}), ("z/c", {"role": "client"})],
    )
    case(
        "two-pods-swap",
        "x/a from pod=b of x; x/b and x/c swap their pod labels.",
        [allow("from-b", "x", "ingress", ml(pod="a"), [rule([pods(ml(pod="b"))])])],
        [("x/b", {"pod": "c"}), ("x/c", {"pod": "b"})],
    )
    return out


def fam_relabel_namespace() -> list[Draft]:
    out: list[Draft] = []
    case = _relabelling(out, "relabel-namespace", "relabel-ns", Seq.label_ns)

    case(
        "peer-gains-team",
        "x accepts from team=blue namespaces; z joins team blue, then y leaves it.",
        [allow("from-blue", "x", "ingress", ALL, [rule([nss(ml(team="blue"))])])],
        [("z", {"team": "blue"}), ("y", {"team": None})],
    )
    case(
        "doesnotexist-team",
        "y accepts from namespaces without team (z); x loses its team.",
        [allow("no-team", "y", "ingress", ALL, [rule([nss(ex("team", "DoesNotExist"))])])],
        [("x", {"team": None})],
    )
    case(
        "notin-egress",
        "z egress only to namespaces with ns NotIn (x); x is relabelled ns=w.",
        [allow("not-x", "z", "egress", ALL, [rule([nss(ex("ns", "NotIn", "x"))])])],
        [("x", {"ns": "w"}), ("x", {"ns": "x"})],
    )
    case(
        "and-peer",
        "x/a from env=prod namespaces' pod=b pods; y gains env=prod, then z.",
        [allow("prod-b", "x", "ingress", ml(pod="a"), [rule([both(ml(env="prod"), ml(pod="b"))])])],
        [("y", {"env": "prod"}), ("z", {"env": "prod"})],
    )
    case(
        "or-peers",
        "y/c from env=prod namespaces or from y's pod a; z gains env=prod.",
        [allow("prod-or-a", "y", "ingress", ml(pod="c"), [rule([nss(ml(env="prod")), pods(ml(pod="a"))])])],
        [("z", {"env": "prod"})],
    )
    case(
        "in-values",
        "x egress to ns In (y); z becomes ns=y too, then y becomes ns=q.",
        [allow("to-y", "x", "egress", ALL, [rule([nss(ex("ns", "In", "y"))])])],
        [("z", {"ns": "y"}), ("y", {"ns": "q"})],
    )
    case(
        "own-namespace-relabel",
        "z accepts from team=green only; z itself becomes team=green.",
        [allow("green", "z", "ingress", ALL, [rule([nss(ml(team="green"))])])],
        [("z", {"team": "green"})],
    )
    case(
        "exists-with-ports",
        "y/b accepts UDP from namespaces with env; x gains env=dev, then loses it.",
        [allow("env-udp", "y", "ingress", ml(pod="b"), [rule([nss(ex("env", "Exists"))], [port(None, "UDP")])])],
        [("x", {"env": "dev"}), ("x", {"env": None})],
    )
    return out


def fam_sequence() -> list[Draft]:
    f = "sequence"
    out = []
    s = (
        Seq()
        .apply(_deny_x())
        .step()
        .apply(_from_role_admin())
        .step()
        .label_pod("z/c", {"role": "admin"})
        .step()
        .label_ns("z", {"team": "red"})
        .apply(allow("from-admins", "x", "ingress", ml(pod="a"), [rule([both(ml(team="red"), ml(role="admin"))])]))
        .step()
        .delete("x", "deny-in")
        .step()
    )
    out.append(Draft(f, "sequence-admins", "Deny x, admit admins, relabel, narrow to team red, delete the deny.", s))
    s = (
        Seq()
        .step()
        .apply(deny("deny-all", "y", "both"))
        .step()
        .apply(allow("dns-like", "y", "egress", ALL, [rule([nss(ALL)], [port(81, "UDP")])]))
        .step()
        .apply(netpol("in", "y", ALL, ingress=[rule([nss(ml(ns="x"))], [port(80, "TCP", 81)])]))
        .step()
        .delete("y", "deny-all")
        .step()
    )
    out.append(Draft(f, "sequence-lockdown-y", "Lock y down, open UDP 81 out and TCP 80-81 in from x, unlock.", s))
    s = (
        Seq()
        .apply(allow("web", "z", "ingress", ml(tier="web"), [rule([pods(ALL)])]))
        .step()
        .label_pod("z/c", {"tier": "web"})
        .step()
        .label_pod("z/a", {"tier": None})
        .step()
        .apply(allow("web", "z", "ingress", ml(tier="web"), [rule([nss(ALL)])]))
        .step()
    )
    out.append(Draft(f, "sequence-tier-moves", "z's web tier isolates; the tier label moves between pods.", s))
    s = (
        Seq()
        .apply(allow("p", "x", "egress", ALL, [rule([block(POD_NETWORK, NODE_CIDRS["kind-worker"])])]))
        .step()
        .apply(allow("p", "x", "egress", ALL, [rule([block(NODE_CIDRS["kind-worker"])])]))
        .step()
        .apply(deny("deny-in", "y"))
        .step()
        .delete("x", "p")
        .step()
    )
    out.append(Draft(f, "sequence-ipblocks", "x egress by ipBlock, flipped to the complement, y denies, x freed.", s))
    s = (
        Seq()
        .apply(
            allow(
                "blue",
                "x",
                "ingress",
                ALL,
                [rule([nss(ml(team="blue")), pods(ml(pod="c"))], [port("serve-80-udp", "UDP")])],
            )
        )
        .step()
        .label_ns("y", {"team": "red"})
        .step()
        .label_pod("x/a", {"pod": "c"})
        .step()
        .label_ns("z", {"team": "blue"})
        .label_pod("x/a", {"pod": "a"})
        .step()
    )
    out.append(Draft(f, "sequence-named-udp", "A named UDP port from team blue or x's c pods; labels move.", s))
    return out


SYSTEMATIC = (
    fam_deny,
    fam_allow_all,
    fam_pod_selector,
    fam_namespace_selector,
    fam_and_or,
    fam_ip_block,
    fam_ports,
    fam_multiple,
    fam_other_namespace,
    fam_ingress_egress,
    fam_policy_types,
    fam_apply,
    fam_update,
    fam_delete,
    fam_relabel_pod,
    fam_relabel_namespace,
    fam_sequence,
)
