"""Verdicts and pods explained in words a user understands (`testbed explain`); pure."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import tiers
from .model import DIRECTIONS, PodPeer, Rule, describe_peers, describe_ports
from .oracle import (
    ALLOWED,
    BYPASS,
    NO_POD,
    NO_RULE,
    NODE_LOCAL,
    NOT_A_POD,
    NOT_ISOLATED,
    SELF,
    DirectionVerdict,
    Verdict,
    peer_matches,
    selecting_policies,
    selector_text,
)
from .world import Endpoint, World

if TYPE_CHECKING:  # a World's pods are the Plan's
    from ..plan.model import PodPlan

MAX_NAMES = 6


def explain_flow(verdict: Verdict) -> str:
    f, src, dst = verdict.flow, verdict.src, verdict.dst
    lines = [
        f"from: {_where(src)}",
        f"to:   {_where(dst)}",
        f"what: {f.service()}",
        "verdict: ALLOWED"
        if verdict.allowed
        else f"verdict: BLOCKED {_where_blocked(verdict)}: the packet is dropped, the client sees a timeout",
    ]
    if verdict.bypass == SELF:
        lines.append(
            "  A pod's traffic to its own address never leaves its network namespace: "
            "a pod cannot block access to itself."
        )
        return "\n".join(lines) + "\n"
    if verdict.bypass == NODE_LOCAL:
        pod = dst.pod if dst.pod is not None else src.pod
        lines.append(
            f"  Traffic between a pod and its own node ({pod.node if pod else ''}) is always allowed, "
            "whatever the policies (kubelet health checks rely on it)."
        )
        return "\n".join(lines) + "\n"
    if verdict.bypass == NO_POD:
        lines.append("  Neither end is a pod: NetworkPolicies do not apply.")
        return "\n".join(lines) + "\n"
    for d in (verdict.egress, verdict.ingress):
        lines += _direction(d)
    if verdict.allowed and (verdict.egress.isolated or verdict.ingress.isolated):
        lines.append("  Replies of this connection are allowed back (connection tracking).")
    return "\n".join(lines) + "\n"


def _where_blocked(verdict: Verdict) -> str:
    parts = [
        ("at egress of the source" if d.direction == "egress" else "at ingress of the destination")
        + f" ({', '.join(d.selecting)})"
        for d in (verdict.egress, verdict.ingress)
        if not d.allowed
    ]
    return " and ".join(parts)


def _where(ep: Endpoint) -> str:
    if ep.pod is None:
        return ep.label()
    pod = ep.pod
    text = f"pod {pod.full_name}, {ep.ip}" + (f" on node {pod.node}" if pod.node else "")
    labels = ", ".join(f"{k}={v}" for k, v in sorted(pod.labels.items()))
    return text + (f", labels {labels}" if labels else ", no labels")


def _direction(d: DirectionVerdict) -> list[str]:
    if not d.tier:
        return _v1_direction(d)
    # With the administrator's tiers: who decided first, then (for NetworkPolicy) the details.
    title = "egress of the source" if d.direction == "egress" else "ingress of the destination"
    lines = [f"  {title}: {'allowed' if d.allowed else 'BLOCKED'}: {d.decision()}"]
    lines += [f"    {hit} (skips the rest of the {hit.tier} tier)" for hit in d.passed]
    if d.reason in (ALLOWED, NO_RULE):
        lines += ["  " + line for line in _v1_direction(d)]
    elif d.reason == NOT_ISOLATED:
        lines.append(
            f"    no Admin or Baseline rule decides and no NetworkPolicy selects {d.pod} for "
            f"{d.direction}: the default allow"
        )
    return lines


def _v1_direction(d: DirectionVerdict) -> list[str]:
    title = "egress of the source" if d.direction == "egress" else "ingress of the destination"
    if d.reason == NOT_A_POD:
        return [f"  {title}: not a pod, no policy applies."]
    if d.reason == BYPASS:
        return [f"  {title}: not filtered."]
    if d.reason == NOT_ISOLATED:
        return [
            f"  {title}: allowed: no NetworkPolicy selects {d.pod} for {d.direction}, "
            f"so all its {'incoming' if d.direction == 'ingress' else 'outgoing'} traffic is allowed."
        ]
    n = len(d.selecting)
    head = (
        f"  {title}: {'allowed' if d.allowed else 'BLOCKED'}: {d.pod} is isolated for {d.direction} by "
        f"{n} {'policy' if n == 1 else 'policies'} ({', '.join(d.selecting)})"
    )
    lines = [
        head + (";" if d.reason == ALLOWED else f", and none of {'its' if n == 1 else 'their'} rules allows this flow:")
    ]
    if d.reason == ALLOWED:
        for a in d.allows:
            lines.append(f"    allowed by {a.policy} {a.path}: {a.peer_text}, {a.port_text}")
    if d.reason == NO_RULE or d.misses:
        for m in d.misses:
            prefix = "    not by" if d.reason == ALLOWED else "    -"
            lines.append(f"{prefix} {m.policy} {m.rule}: {m.reason}")
    return lines


def explain_pod(world: World, ref: str) -> str:
    """Which policies select the pod, for each direction, and what they let through."""
    pod = world.pod(ref)
    lines = [f"pod {pod.full_name}, IP {pod.ip}" + (f" on node {pod.node}" if pod.node else "")]
    labels = ", ".join(f"{k}={v}" for k, v in sorted(pod.labels.items())) or "(none)"
    lines.append(f"  labels: {labels}")
    if pod.ports:
        lines.append(
            "  ports: " + ", ".join(f"{p.port}/{p.protocol}" + (f" ({p.name})" if p.name else "") for p in pod.ports)
        )
    for direction in DIRECTIONS:
        selecting = selecting_policies(world, pod, direction)
        word = "incoming" if direction == "ingress" else "outgoing"
        if not selecting:
            lines.append(
                f"{direction}: not isolated: no policy with policyType "
                f"{direction.capitalize()} selects this pod; all {word} traffic is allowed."
            )
            continue
        n = len(selecting)
        lines.append(
            f"{direction}: isolated by {n} {'policy' if n == 1 else 'policies'}; "
            f"only what {'it allows' if n == 1 else 'they allow together'} gets "
            f"{'in' if direction == 'ingress' else 'out'}:"
        )
        any_rule = False
        for policy in selecting:
            types = "policyTypes " + ", ".join(policy.types) + ("" if policy.types_given else " (inferred)")
            lines.append(f"  {policy.full_name} (selects {selector_text(policy)}; {types})")
            rules = policy.rules(direction) or ()
            if not rules:
                lines.append(f"    no {direction} rules: allows nothing by itself")
            for rule in rules:
                any_rule = True
                lines.append(f"    {rule.path}: {describe_peers(rule, direction)}, {describe_ports(rule)}")
                now = _peers_now(world, rule)
                if now is not None:
                    lines.append(f"      pods matching now: {now}")
        if not any_rule:
            lines.append(f"  => every {word} connection is blocked (deny all {direction}).")
        lines.append(
            f"  always allowed too: traffic {'from' if direction == 'ingress' else 'to'} its own node"
            + (f" {pod.node}" if pod.node else "")
            + ", and replies to allowed connections."
        )
    lines += _tiers_of_pod(world, pod)
    ignored = [p for p in world.policies if p.selects(pod.namespace, pod.labels) and p.ignored]
    for policy in ignored:
        for direction in policy.ignored:
            lines.append(
                f"note: {policy.full_name} has {direction} rules, but its policyTypes "
                f"({', '.join(policy.types)}) leave {direction} alone: those rules are ignored."
            )
    return "\n".join(lines) + "\n"


def _peers_now(world: World, rule: Rule) -> str | None:
    """The pods the rule's selector peers match now, or None if it has only ipBlocks/no peers."""
    if rule.peers is None or not any(isinstance(p, PodPeer) for p in rule.peers):
        return None
    names = [
        p.full_name
        for p in world.pods
        if any(isinstance(peer, PodPeer) and peer_matches(world, peer, Endpoint(p.ip, p)) for peer in rule.peers)
    ]
    if not names:
        return "none"
    more = f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else ""
    return ", ".join(names[:MAX_NAMES]) + more


def _tiers_of_pod(world: World, pod: PodPlan) -> list[str]:
    """The administrator's policies whose subject is the pod, in evaluation order (netpol/tiers.py)."""

    lines = []
    for direction in DIRECTIONS:
        for tier in (tiers.ADMIN, tiers.BASELINE):
            for policy in tiers.selecting(world, tier, direction, pod):
                for rule in policy.ingress if direction == "ingress" else policy.egress:
                    name = rule.name or f"spec.{direction}[{rule.index}]"
                    lines.append(
                        f"{direction}: {tier} {policy.full_name} (priority {policy.priority}) "
                        f"rule {name}: {rule.action}"
                    )
    if lines:
        lines.insert(
            0,
            "cluster network policies (checked before the NetworkPolicies above for Admin, "
            "after them for Baseline; first match wins):",
        )
    return lines
