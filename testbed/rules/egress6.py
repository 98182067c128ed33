"""kind's IPv6 masquerade in a dual-stack cluster (issue 15), compiled into the rule model (pure).

kindnetd (kind's CNI daemon, images/kindnetd/cmd/kindnetd/masq.go) runs one ip-masq-agent per
family; for IPv6 it writes, in ip6tables' nat table:

    -A POSTROUTING -m addrtype ! --dst-type LOCAL -j KIND-MASQ-AGENT
    -A KIND-MASQ-AGENT -d <the IPv6 podSubnet> -j RETURN    (local traffic is not masqueraded)
    -A KIND-MASQ-AGENT -j MASQUERADE                          (outbound traffic is)

Its only exception is the cluster's IPv6 pod subnet (POD_SUBNET's IPv6 half): everything else
a node sends on — pods to the outside world, to external hosts of the underlay, to other nodes'
addresses — leaves with the node's address. DNAT happens before (kube-proxy, PREROUTING), so a
pod reaching a Service's endpoint is not masqueraded. The same three rules here, as one nft base
chain after kube-proxy's masquerading (srcnat + 10, as rules/egress.py's IPv4 table).
"""

from __future__ import annotations

from .model import Addr, AddrType, Chain, Comment, Masquerade, Return, Rule, Table
from .render_nft import render_block

TABLE = "testbed-egress6"
PRIORITY = 110  # srcnat + 10


def egress6_table(pod_subnet_v6: str) -> Table:
    rules = (
        Rule((AddrType("daddr"), Comment("kind-masq-agent: traffic to the node itself is not masqueraded")), Return()),
        Rule(
            (Addr("daddr", (pod_subnet_v6,)), Comment("kind-masq-agent: local traffic is not subject to MASQUERADE")),
            Return(),
        ),
        Rule(
            (Comment("kind-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)"),),
            Masquerade(fully_random=False),
        ),
    )
    chain = Chain("postrouting", rules, hook="postrouting", type="nat", priority=PRIORITY, policy="accept")
    return Table(TABLE, (chain,), family="ip6")


def egress6_nft(pod_subnet_v6: str) -> str:
    """The `nft -f` text: the table recreated in one transaction, IPv6 matches (`ip6 daddr`)."""
    text = render_block(egress6_table(pod_subnet_v6), indent="  ", create="table {ref} {{}}")
    return text.replace("ip daddr ", "ip6 daddr ")
