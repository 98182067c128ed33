"""The administrator's tiers compiled into the node's NetworkPolicy table; pure.

Used by compiler.compile_node when the World has tiers (netpol/tiers.py); without tiers the
table is exactly what it was. The v1 chains (check-egress, check-ingress) stay as they are;
for each direction D the forward chain jumps to `tiers-D`, which walks the hierarchy:

    chain tiers-D        Admin rules in evaluation order (priority, then rule order):
                           Accept -> return (egress: on to the ingress check) / accept (ingress)
                           Deny   -> drop
                           Pass   -> goto np-D (skips the rest of the Admin tier)
                         then goto np-D
    chain np-D           the pod is isolated by a NetworkPolicy for D -> goto check-D (v1 decides)
                         else goto baseline-D
    chain baseline-D     Baseline rules in evaluation order: Accept -> return/accept, Deny -> drop,
                         Pass -> return; end of chain: return (the default allow)

Every tier rule matches its policy's subject (a set of this node's pods it selects: the
destination for ingress, the source for egress), one peer (a set of pod IPs cluster-wide, an
interval set of networks, or a set of node addresses) and one port group (protocol and port
ranges, or a set of (pod IP . port) pairs for a named port): rules grow with the policies,
their pods only change set elements.
"""

from __future__ import annotations

import hashlib
import ipaddress

from ..rules.model import Accept, Chain, DPort, Drop, Goto, InSet, NftSet, Part, Proto, Return
from ..rules.model import Rule as NftRule
from ..spec.cnp import ACCEPT, ADMIN, BASELINE, DENY, ClusterPolicySpec, TierPeer, TierRule
from . import tiers
from .compiler import _merge
from .nft import ADDR, ADDR_PORT, sort_elements

TIERS = {"ingress": "tiers-ingress", "egress": "tiers-egress"}
NP = {"ingress": "np-ingress", "egress": "np-egress"}
BASE = {"ingress": "baseline-ingress", "egress": "baseline-egress"}
PROTOCOLS = ("TCP", "UDP", "SCTP")
INTERVAL = ("interval",)


def compile_tiers(
    world,
    node: str,
    local,
    isolated_sets: dict[str, str],
    checks: dict[str, str],
    self_field: dict[str, str],
    peer_field: dict[str, str],
    cache: dict,
    nft_rule,
) -> tuple[list[Chain], list[NftSet]]:
    """(chains, sets) of the tiers on `node`: tiers-D, np-D, baseline-D for each direction."""
    sets: list[NftSet] = []
    chains: list[Chain] = []
    subject: dict[int, str] = {}
    keys = set_keys(world.tiers)
    for t, policy in enumerate(world.tiers):
        name = f"{keys[t]}-pods"
        ns = world.namespace_labels
        pods = [p.ip for p in local if tiers.subject_selects(policy, p.namespace, ns(p.namespace), p.labels)]
        sets.append(
            NftSet(
                name,
                ADDR,
                sort_elements(pods),
                comment=f"{policy.tier} {policy.full_name} (priority {policy.priority}): "
                "its subject's pods on this node",
            )
        )
        subject[t] = name
    allow = {"ingress": Accept(), "egress": Return()}
    for d in ("egress", "ingress"):
        admin: list[NftRule] = []
        base: list[NftRule] = []
        for t, policy in enumerate(world.tiers):
            rules = policy.ingress if d == "ingress" else policy.egress
            target = admin if policy.tier == ADMIN else base
            for rule in rules:
                if rule.action == ACCEPT:
                    verdict = allow[d]
                elif rule.action == DENY:
                    verdict = Drop()
                else:  # Pass: the rest of the tier is skipped
                    verdict = Goto(NP[d]) if policy.tier == ADMIN else Return()
                target += _rule(
                    world,
                    policy,
                    keys[t],
                    subject[t],
                    d,
                    rule,
                    local,
                    verdict,
                    sets,
                    cache,
                    self_field,
                    peer_field,
                    nft_rule,
                )
        chains.append(
            Chain(
                TIERS[d],
                tuple(admin) + (nft_rule((), Goto(NP[d]), f"{d}: no Admin rule decides: the NetworkPolicy tier"),),
            )
        )
        chains.append(
            Chain(
                NP[d],
                (
                    nft_rule(
                        (InSet(self_field[d], isolated_sets[d]),),
                        Goto(checks[d]),
                        f"{d}: a NetworkPolicy selects the pod: it decides",
                    ),
                    nft_rule((), Goto(BASE[d]), f"{d}: no NetworkPolicy selects the pod: the Baseline tier"),
                ),
            )
        )
        chains.append(
            Chain(BASE[d], tuple(base) + (nft_rule((), Return(), f"{d}: no Baseline rule decides: the default allow"),))
        )
    return chains, sets


def set_keys(policies) -> list[str]:
    """Each policy's prefix for its set names: `t` and 8 hex digits of its kind/name's SHA-256,
    stable whatever the other policies are (an index would rename every later policy's sets
    when one is inserted, and a patch (nft_patch.py) would have to reload them all). Should two
    names share the digits, the later ones get their index appended."""
    out: list[str] = []
    for t, policy in enumerate(policies):
        key = "t" + hashlib.sha256(policy.full_name.encode()).hexdigest()[:8]
        out.append(key if key not in out else f"{key}x{t}")
    return out


def _rule(
    world,
    policy: ClusterPolicySpec,
    t: str,
    subject: str,
    d: str,
    rule: TierRule,
    local,
    verdict,
    sets: list[NftSet],
    cache: dict,
    self_field,
    peer_field,
    nft_rule,
) -> list[NftRule]:
    prefix = f"{t}-{'in' if d == 'ingress' else 'eg'}{rule.index}"
    what = f"{policy.tier} {policy.full_name} {d} rule {rule.name or f'spec.{d}[{rule.index}]'}: {rule.action}"
    peers: list[tuple[Part, ...]] = []
    for k, peer in enumerate(rule.peers):
        name = f"{prefix}-peer{k}"
        if name not in cache:
            cache[name] = _peer_set(world, name, peer, f"{policy.full_name} spec.{d}[{rule.index}] peer {k}")
        sets.append(cache[name])
        peers.append((InSet(peer_field[d], name),))
    out = []
    for peer_match in peers:
        for port_match in _port_groups(world, rule, prefix, d, local, sets, policy):
            out.append(
                nft_rule((InSet(self_field[d], subject),) + peer_match + port_match, verdict, what, counter=True)
            )
    return out


def _peer_set(world, name: str, peer: TierPeer, where: str) -> NftSet:
    if peer.networks:
        parsed = [ipaddress.ip_network(c, strict=False) for c in peer.networks]
        # the networks of the world's family (issue 15: the IPv6 twin table takes the IPv6 ones)
        nets: list[str] = [
            str(n)
            for n in (
                ipaddress.collapse_addresses(n for n in parsed if isinstance(n, ipaddress.IPv6Network))
                if world.ip_version == 6
                else ipaddress.collapse_addresses(n for n in parsed if isinstance(n, ipaddress.IPv4Network))
            )
        ]
        return NftSet(name, ADDR, tuple(nets), INTERVAL, comment=f"{where}: networks {', '.join(peer.networks)}")
    if peer.nodes is not None:
        ips = [ip for n in world.nodes if peer.nodes.matches(world.node_labels.get(n.name, {})) for ip in n.ips]
        return NftSet(name, ADDR, sort_elements(ips), comment=f"{where}: node addresses ({peer.nodes})")
    ips = [p.ip for p in world.pods if tiers.peer_matches(world, peer, _PodEnd(p))]
    return NftSet(name, ADDR, sort_elements(ips), comment=f"{where}: pods")


class _PodEnd:
    """A pod as the other end of a flow (what tiers.peer_matches reads)."""

    def __init__(self, pod) -> None:
        self.pod, self.ip, self.node = pod, pod.ip, ""


def _port_groups(
    world, rule: TierRule, prefix: str, d: str, local, sets: list[NftSet], policy: ClusterPolicySpec
) -> list[tuple[Part, ...]]:
    if rule.ports is None:
        return [()]
    groups: list[tuple[Part, ...]] = []
    by_proto: dict[str, list[tuple[int, int]]] = {}
    for port in rule.ports:
        if port.protocol is not None and port.first is not None and port.last is not None:
            by_proto.setdefault(port.protocol, []).append((port.first, port.last))
    for proto in PROTOCOLS:
        if proto in by_proto:
            groups.append((Proto(proto.lower()), DPort(_merge(by_proto[proto]))))
    candidates = local if d == "ingress" else world.pods
    for pname in dict.fromkeys(p.name for p in rule.ports if p.name):
        for proto in PROTOCOLS:  # a named port has the protocol of the container port it names
            name = f"{prefix}-{proto.lower()}-{pname}"
            elements = [
                f"{pod.ip} . {q.port}"
                for pod in candidates
                for q in pod.ports
                if q.name == pname and q.protocol == proto
            ]
            sets.append(
                NftSet(
                    name,
                    ADDR_PORT,
                    sort_elements(elements),
                    comment=f"{policy.full_name} {prefix}: {proto} port named {pname}, per pod",
                )
            )
            groups.append((InSet("daddr . dport", name, proto.lower()),))
    return groups


__all__ = ["BASELINE", "compile_tiers"]
