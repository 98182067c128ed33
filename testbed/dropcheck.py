"""Where a blocked flow died, and whether that is where `testbed explain --trace` says (pure).

Where it sits: beside rulepath.py, over the same desired state. A probe blocked by drop evidence
(traffic/droplog.py) carries `drop_at`, "node/table/chain[rule] (verdict)" as the kernel logged
it. `owner` says whose rule that is (the NetworkPolicies isolating the pod, the tier policy's
rule, the Service without endpoints), read from the node's compiled tables; `predicted` follows
the flow with the rule tracer (rulepath.trace_path) and lists the rules its branches end on, in
the same form, so `agrees` compares what was seen with what the rules predict. An IPv6 flow of
a dual-stack cluster is read from the plan's IPv6 view (plan/view6.py): its tables, its world.
"""

from __future__ import annotations

from dataclasses import dataclass

from .netpol.oracle import Flow
from .plan.model import Plan
from .plan.view6 import family_plan
from .rulepath import trace_path
from .rules.droplog import RuleKey, key_of, locate
from .rules.model import Drop, Reject, Ruleset

_POLICY_CHECKS = {"check-ingress": "ingress", "check-egress": "egress"}


@dataclass(frozen=True)
class DropPoint:
    node: str
    key: RuleKey

    def where(self) -> str:
        k = self.key
        return f"{self.node}/{k.table}/{k.chain}[{k.index}] ({k.verdict})"


def parse_where(text: str) -> DropPoint | None:
    """A DropPoint from its `where()` text (None for "" or anything else)."""
    head, _, verdict = text.rpartition(" (")
    node, _, rest = head.partition("/")
    table, _, chain_index = rest.partition("/")
    chain, _, index = chain_index.rpartition("[")
    verdict = verdict.rstrip(")")
    if not (node and table and chain and index.endswith("]") and index[:-1].isdigit()):
        return None
    if verdict not in ("drop", "reject"):
        return None
    return DropPoint(node, RuleKey(verdict, table, chain, int(index[:-1])))


def predicted(plan: Plan, src_ip: str, dst_ip: str, port: int | None, protocol: str) -> tuple[str, ...]:
    """The rules (in `where()` form) on which the flow's branches end dropped or rejected."""
    return tuple(predicted_drops(plan, src_ip, dst_ip, port, protocol))


def predicted_drops(plan: Plan, src_ip: str, dst_ip: str, port: int | None, protocol: str) -> dict[str, str]:
    """Each rule (in `where()` form) a branch of the flow ends on, with the packet's destination
    address there (after kube-proxy's DNAT: the pod a Service sent it to)."""
    plan = family_plan(plan, dst_ip)
    try:
        pt = trace_path(plan, plan.world, Flow(src_ip, dst_ip, port, protocol))
    except (ValueError, KeyError, LookupError):
        return {}
    out: dict[str, str] = {}
    for b in pt.branches:
        if b.delivered or not b.hops:
            continue
        hop = b.hops[-1]
        for h in reversed(hop.outcome.hooks):
            if h.verdict not in ("drop", "reject"):
                continue
            step = next(
                (s for s in reversed(h.steps) if s.matched and isinstance(s.rule.verdict, (Drop, Reject))), None
            )
            if step is not None:
                where = DropPoint(hop.node, key_of(step.table, step.chain, step.index, step.rule)).where()
                out.setdefault(where, hop.outcome.destination.rpartition(":")[0].strip("[]"))
            break
    return out


def agrees(plan: Plan, drop_at: str, src_ip: str, dst_ip: str, port: int | None, protocol: str) -> bool:
    return drop_at in predicted(plan, src_ip, dst_ip, port, protocol)


def owner(
    plan: Plan, drop_at: str, src_ip: str = "", dst_ip: str = "", port: int | None = None, protocol: str = ""
) -> str:
    """Whose rule dropped: the policies isolating the pod, a tier policy's rule, a Service."""
    plan = family_plan(plan, dst_ip or src_ip)
    point = parse_where(drop_at)
    rulesets: dict[str, Ruleset] = dict(plan.rulesets)
    if point is None or point.node not in rulesets:
        return ""
    found = locate(rulesets[point.node], point.key)
    if found is None:
        return ""
    direction = _POLICY_CHECKS.get(found.chain)
    if direction is not None:
        ip = dst_ip if direction == "ingress" else src_ip
        names = _isolating(plan, ip, direction)
        return f"no rule of {', '.join(names)} allows it ({direction})" if names else f"{direction} isolation"
    if not found.rule.comment and found.table.maps:  # nft kube-proxy's shared reject-chain: which Service sent it
        keys = {(dst_ip, protocol.lower(), str(port)), (protocol.lower(), str(port))}
        for m in found.table.maps:
            for e in m.elements if m.name.startswith("no-endpoint") else ():
                if e.key in keys:
                    return f"{e.comment} has no endpoints"
    return found.rule.comment


def _isolating(plan: Plan, ip: str, direction: str) -> list[str]:
    world = plan.world
    pods = [p for p in world.pods if p.ip == ip]
    if len(pods) != 1:
        return []
    pod = pods[0]
    return [
        p.full_name for p in world.policies if p.rules(direction) is not None and p.selects(pod.namespace, pod.labels)
    ]
