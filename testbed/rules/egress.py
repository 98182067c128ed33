"""The egress masquerade, compiled into the rule model (pure): pods to the outside world.

Every node SNATs its pods' traffic to the outside subnets to its own address, as kind's
ip-masq-agent does: the one NAT Kubernetes expects on the way out. One nft table, one base
chain after kube-proxy's masquerading (srcnat + 10); emu/ loads `egress_nft`'s text as is.
"""

from __future__ import annotations

from .model import Addr, Chain, Comment, Masquerade, Rule, Table
from .render_nft import render_block

TABLE = "testbed-egress"
PRIORITY = 110  # srcnat + 10


def egress_table(pod_subnet: str, outside: list[str] | tuple[str, ...]) -> Table:
    rules: tuple[Rule, ...] = ()
    if outside:
        rules = (
            Rule(
                (
                    Addr("saddr", (pod_subnet,)),
                    Addr("daddr", tuple(outside), literal_set=True),
                    Comment("pods to the outside world: SNAT to the node (the one NAT Kubernetes expects)"),
                ),
                Masquerade(fully_random=False),
            ),
        )
    chain = Chain("postrouting", rules, hook="postrouting", type="nat", priority=PRIORITY, policy="accept")
    # a single-stack IPv6 cluster (issue 15): the same rule in an ip6 table (`ip6 saddr`)
    return Table(TABLE, (chain,), family="ip6" if ":" in pod_subnet else "ip")


def egress_nft(pod_subnet: str, outside: list[str] | tuple[str, ...]) -> str:
    """The `nft -f` text: the table recreated in one transaction (atomic, idempotent)."""
    return render_block(egress_table(pod_subnet, outside), indent="  ", create="table {ref} {{}}")
