"""The compiler: NetworkPolicies -> one nftables ruleset per node; pure.

Each node enforces the policies of *its own* pods, in its network namespace, at the forward
hook (pod-to-pod traffic on one node is bridged by cni0 and reaches the forward hook through
br_netfilter; traffic to or from other nodes is routed through it):

    table inet testbed-netpol
      set isolated-egress / isolated-ingress   local pods isolated for each direction
      set pod-self                              (pod IP . same pod IP) for local pods
      set p<i>-pods                             local pods selected by policy i
      set p<i>-in<r>-peer<k> / p<i>-eg<r>-peer<k>  peer k of rule r: pod IPs (cluster-wide) of a
                                                selector peer, or the prefixes of an ipBlock
                                                (cidr minus except, flags interval)
      set p<i>-in<r>-<proto>-<name>             named port: (pod IP . resolved port) pairs
      chain check-egress    one rule per (policy, rule, peer, port group) -> return; else drop
      chain check-ingress   the same -> accept; else drop
      chain forward         hook forward: ct state established,related accept;
                            ip saddr . ip daddr @pod-self accept (a pod reaching itself
                            through a Service crosses the node: hairpin, never blocked);
                            ip saddr @isolated-egress jump check-egress;
                            ip daddr @isolated-ingress jump check-ingress

A flow between two pods of one node passes both checks in one traversal; between nodes, the
source node checks egress and the destination node ingress. The rule count depends on the
policies only (rules x peers x port groups); pods only change set elements, so a pod added,
removed or relabelled is an element update (`reconcile`). Traffic between a node and its own
pods crosses the input/output hooks, which the table leaves alone: always allowed, as the
oracle says. Blocked packets are dropped (a client times out, as with most CNI plugins), each drop
preceded by a rate-limited log rule that tells the testbed where (rules/droplog.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..rules.model import (
    Accept,
    Chain,
    Comment,
    Counter,
    CtState,
    DPort,
    Drop,
    InSet,
    Jump,
    Log,
    NftSet,
    Part,
    Proto,
    Return,
    Ruleset,
    Table,
    Verdict,
)
from ..rules.model import Rule as NftRule
from .model import DIRECTIONS, IPPeer, Policy, PortMatch, Rule, describe_peer
from .nft import ADDR, ADDR_ADDR, ADDR_PORT, FAMILY, TABLE, remove_script, render, set_updates, sort_elements
from .nft_patch import patch
from .oracle import selector_text
from .world import World

if TYPE_CHECKING:  # a World's pods are the Plan's
    from ..plan.model import PodPlan

ISOLATED = {"ingress": "isolated-ingress", "egress": "isolated-egress"}
SELF_SET = "pod-self"
CHECK = {"ingress": "check-ingress", "egress": "check-egress"}
SHORT = {"ingress": "in", "egress": "eg"}
# the selected pod is the destination of ingress and the source of egress
SELF_FIELD = {"ingress": "daddr", "egress": "saddr"}
PEER_FIELD = {"ingress": "saddr", "egress": "daddr"}
ALLOW_VERDICT: dict[str, Verdict] = {"ingress": Accept(), "egress": Return()}  # egress returns to the ingress check
INTERVAL = ("interval",)


def _nft_rule(matches: tuple[Part, ...], verdict: Verdict, comment: str = "", counter: bool = False) -> NftRule:
    """A rule as this table writes it: matches, `counter`, the verdict, the comment. A drop also
    reports the packet to the testbed (rules/droplog.py: drop evidence)."""
    log: tuple[Part, ...] = (Log(),) if isinstance(verdict, Drop) else ()
    return NftRule(
        matches + ((Counter(),) if counter else ()) + log + ((Comment(comment),) if comment else ()), verdict
    )


def compile_node(world: World, node: str, cache: dict[Any, Any] | None = None) -> Ruleset:
    """The ruleset of one node; `cache` shares the cluster-wide peer sets between nodes."""
    cache = {} if cache is None else cache
    local = world.pods_on(node)
    sets: list[NftSet] = []
    isolated: dict[str, set[str]] = {d: set() for d in DIRECTIONS}
    checks: dict[str, list[NftRule]] = {d: [] for d in DIRECTIONS}
    for i, policy in enumerate(world.policies):
        selected = [p for p in local if policy.selects(p.namespace, p.labels)]
        sel = f"p{i}-pods"
        sets.append(
            NftSet(
                sel,
                ADDR,
                sort_elements(p.ip for p in selected),
                comment=f"{policy.full_name}: the pods it selects on this node ({selector_text(policy)})",
            )
        )
        for direction in DIRECTIONS:
            rules = policy.rules(direction)
            if rules is None:
                continue
            isolated[direction].update(p.ip for p in selected)
            candidates = selected if direction == "ingress" else world.pods
            for r, rule in enumerate(rules):
                checks[direction] += _rule(world, policy, i, sel, direction, r, rule, candidates, sets, cache)
    header = [
        NftSet(ISOLATED[d], ADDR, sort_elements(isolated[d]), comment=f"pods on this node isolated for {d}")
        for d in DIRECTIONS
    ]
    header.append(
        NftSet(
            SELF_SET,
            ADDR_ADDR,
            sort_elements(f"{p.ip} . {p.ip}" for p in local),
            comment="each pod on this node to itself: a pod cannot block access to itself",
        )
    )
    chains = tuple(
        Chain(
            CHECK[d],
            tuple(checks[d]) + (_nft_rule((), Drop(), f"{d}: no NetworkPolicy rule allows this flow", counter=True),),
        )
        for d in ("egress", "ingress")
    )
    forward = Chain(
        "forward",
        (
            # IPv6 (issue 15): neighbour discovery is ICMPv6 between the pods' own addresses, and
            # bridged IPv6 crosses this hook (kube-proxy needs bridge-nf-call-ip6tables); conntrack
            # leaves it untracked, so it is let through as IPv4's ARP is, which no rule sees.
            _nft_rule((CtState(("ESTABLISHED", "RELATED", "UNTRACKED")),), Accept(), _REPLIES6)
            if world.ip_version == 6
            else _nft_rule((CtState(("ESTABLISHED", "RELATED")),), Accept(), "replies of allowed connections"),
            _nft_rule((InSet("saddr . daddr", SELF_SET),), Accept(), "a pod to itself through a Service (hairpin)"),
            _nft_rule((InSet("saddr", ISOLATED["egress"]),), Jump(CHECK["egress"])),
            _nft_rule((InSet("daddr", ISOLATED["ingress"]),), Jump(CHECK["ingress"])),
        ),
        hook="forward",
        type="filter",
        priority=0,
        policy="accept",
    )
    if world.tiers:
        forward, chains, sets = _with_tiers(world, node, local, forward, chains, sets, cache)
    return Ruleset(node, (Table(TABLE, chains + (forward,), FAMILY, tuple(header + sets)),))


_REPLIES6 = "replies of allowed connections; neighbour discovery (untracked)"


def _with_tiers(
    world: World,
    node: str,
    local: tuple[PodPlan, ...],
    forward: Chain,
    chains: tuple[Chain, ...],
    sets: list[NftSet],
    cache: dict[Any, Any],
) -> tuple[Chain, tuple[Chain, ...], list[NftSet]]:
    """The administrator's tiers around the v1 chains (netpol/tier_compiler.py): the forward
    chain walks each direction's hierarchy instead of jumping straight to the v1 checks."""
    from .tier_compiler import TIERS, compile_tiers  # it imports this module

    tier_chains, tier_sets = compile_tiers(
        world, node, local, ISOLATED, CHECK, SELF_FIELD, PEER_FIELD, cache, _nft_rule
    )
    rules = forward.rules[:2] + tuple(
        _nft_rule((), Jump(TIERS[d]), f"{d}: Admin, NetworkPolicy, Baseline tiers") for d in ("egress", "ingress")
    )
    forward = Chain("forward", rules, hook="forward", type="filter", priority=0, policy="accept")
    return forward, chains + tuple(tier_chains), sets + tier_sets


def _rule(
    world: World,
    policy: Policy,
    i: int,
    sel: str,
    direction: str,
    r: int,
    rule: Rule,
    candidates: tuple[PodPlan, ...] | list[PodPlan],
    sets: list[NftSet],
    cache: dict[Any, Any],
) -> list[NftRule]:
    prefix = f"p{i}-{SHORT[direction]}{r}"
    peers: list[tuple[int | None, tuple[Part, ...]]] = []
    if rule.peers is None:
        peers.append((None, ()))
    for k, peer in enumerate(rule.peers or ()):
        name = f"{prefix}-peer{k}"
        where = f"{policy.full_name} {rule.path}.{rule.peer_key}[{k}]"
        if name not in cache:
            if isinstance(peer, IPPeer):
                cache[name] = NftSet(
                    name,
                    ADDR,
                    tuple(str(n) for n in peer.networks(world.ip_version)),
                    INTERVAL,
                    comment=f"{where}: {describe_peer(peer)}",
                )
            else:
                ips = [
                    p.ip for p in world.pods if peer.matches(p.namespace, world.namespace_labels(p.namespace), p.labels)
                ]
                cache[name] = NftSet(name, ADDR, sort_elements(ips), comment=f"{where}: {describe_peer(peer)}")
        sets.append(cache[name])
        peers.append((k, (InSet(PEER_FIELD[direction], name),)))
    groups = _port_groups(rule, prefix, candidates, sets, policy)
    out: list[NftRule] = []
    for peer_index, peer_match in peers:
        for indices, port_match in groups:
            comment = f"{policy.full_name} {rule.path}"
            if peer_index is not None:
                comment += f".{rule.peer_key}[{peer_index}]"
            if indices:
                comment += f" ports[{','.join(map(str, indices))}]"
            out.append(
                _nft_rule(
                    (InSet(SELF_FIELD[direction], sel),) + peer_match + port_match,
                    ALLOW_VERDICT[direction],
                    comment,
                    counter=True,
                )
            )
    return out


def _port_groups(
    rule: Rule, prefix: str, candidates: tuple[PodPlan, ...] | list[PodPlan], sets: list[NftSet], policy: Policy
) -> list[tuple[tuple[int, ...], tuple[Part, ...]]]:
    """One match per protocol: every port, or the numeric ranges; one per named port."""
    if rule.ports is None:
        return [((), ())]
    by_proto: dict[str, list[tuple[int, PortMatch]]] = {}
    for idx, port in enumerate(rule.ports):
        by_proto.setdefault(port.protocol, []).append((idx, port))
    groups: list[tuple[tuple[int, ...], tuple[Part, ...]]] = []
    for proto, items in by_proto.items():
        every = tuple(i for i, p in items if p.every_port)
        if every:  # subsumes the protocol's other entries
            groups.append((every, (Proto(proto.lower()),)))
            continue
        numeric = [(i, p) for i, p in items if p.first is not None]
        if numeric:
            ranges = _merge(
                (p.first, p.last if p.last is not None else p.first)  # type: ignore[misc]
                for _, p in numeric
            )  # (numeric: p.first is not None)
            groups.append((tuple(i for i, _ in numeric), (Proto(proto.lower()), DPort(ranges))))
        names: dict[str, list[int]] = {}
        for i, p in items:
            if p.name:
                names.setdefault(p.name, []).append(i)
        for pname, named_indices in names.items():
            name = f"{prefix}-{proto.lower()}-{pname}"
            elements = []
            for pod in candidates:
                number = pod.resolve(pname, proto)
                if number is not None:
                    elements.append(f"{pod.ip} . {number}")
            sets.append(
                NftSet(
                    name,
                    ADDR_PORT,
                    sort_elements(elements),
                    comment=f"{policy.full_name} {rule.path}: {proto} port named {pname}, per pod",
                )
            )
            groups.append((tuple(named_indices), (InSet("daddr . dport", name, proto.lower()),)))
    return groups


def _merge(ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return tuple((a, b) for a, b in out)


def compile_cluster(world: World) -> dict[str, Ruleset]:
    cache: dict[Any, Any] = {}
    return {node: compile_node(world, node, cache) for node in world.node_names()}


def node_script(world: World, node: str) -> str:
    """The `nft -f` text for one node."""
    return render(compile_node(world, node))


@dataclass(frozen=True)
class NodeChange:
    node: str
    action: str  # "load": the whole table | "patch": changed chains and sets | "update": set elements only | "remove": drop the table
    script: str  # text for `nft -f` in the node's network namespace


def reconcile(old: World | None, new: World | None) -> dict[str, NodeChange]:
    """What to run on each node to go from `old` to `new` (either may be None: nothing / teardown)."""
    return reconcile_rulesets(
        compile_cluster(old) if old is not None else {}, compile_cluster(new) if new is not None else {}
    )


def _holds_policies(ruleset: Ruleset) -> bool:
    """Whether the table holds a policy (a set beyond the three every table has): a table
    without one has nothing worth keeping, and is loaded whole."""
    return any(s.name not in (*ISOLATED.values(), SELF_SET) for s in ruleset.table(TABLE).sets)


def reconcile_rulesets(before: Mapping[str, Ruleset], after: Mapping[str, Ruleset]) -> dict[str, NodeChange]:
    """What to run on each node to go from the compiled tables `before` to `after`.

    Nodes whose rules do not change are left out. Pods added, removed or relabelled and
    namespaces relabelled are set-element updates; a policy added, removed or changed patches
    the table of every node, only the chains and sets that differ (nft_patch.py), or reloads
    it where a patch cannot say the change or the table held no policy yet (atomically either
    way: one transaction per node).
    """
    out: dict[str, NodeChange] = {}
    for node in sorted(set(before) | set(after)):
        if node not in after:
            out[node] = NodeChange(node, "remove", remove_script())
        elif node not in before:
            out[node] = NodeChange(node, "load", render(after[node]))
        else:
            update = set_updates(before[node], after[node])
            script = patch(before[node], after[node]) if update is None and _holds_policies(before[node]) else None
            if update is None and script is not None:
                out[node] = NodeChange(node, "patch", script)
            elif update is None:
                out[node] = NodeChange(node, "load", render(after[node]))
            elif update:
                out[node] = NodeChange(node, "update", update.render())
    return out
