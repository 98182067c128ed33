"""The IPv6 edges of a dual-stack cluster in the kernel (issue 15; emu/): the underlay router's
IPv6 side and the routes between racks, kind's IPv6 masquerade, IPv6 LoadBalancer addresses and
the routes to IPv6 external IPs (plan/edges6.py plans them; nothing to do for an IPv4 plan).

A controller beside LoadBalancerAnnouncer and ServiceRoutes (emu/cluster.py order), after
kube-proxy's IPv6 proxier. At its first sync every node loads kind's IPv6 masquerade
(rules/egress6.py); the router's IPv6 gateway on each rack (no DAD, and a link-local address
without DAD too: a router solicits its neighbours from it) and the members' routes to the other
racks' IPv6 segments come earlier, with emu/dualstack.py's first sync, so that bird2's IPv6
sessions across racks find them. At every sync, each IPv6 LoadBalancer address is held by its
node and each IPv6 external IP routed to its node, as the Services change.

A LoadBalancer's IPv6 address is a /128 on the node's eth0, deprecated (preferred_lft 0): the
kernel answers neighbour solicitations for it on the underlay, as MetalLB's NDP responder does,
and never picks it as the source of the node's own packets (RFC 6724 rule 3; an IPv4 /32 on lo
cannot be answered from eth0 in IPv6: the kernel answers solicitations only for the addresses of
the interface they arrive on). kube-proxy's DNAT in PREROUTING takes the traffic before delivery.
"""

from __future__ import annotations

from ..plan import edges6
from ..plan.model import Plan
from ..rules.egress6 import egress6_nft
from . import rules
from .controllers import ServiceRoutes, move_announcements
from .daemon import Daemon
from .ledger import Ledger, netns_name
from .runner import Runner


def lb_line6(ip: str, add: bool) -> str:
    """`ip -batch` line that puts (or takes) an IPv6 LoadBalancer address on the node."""
    return f"addr replace {ip}/128 dev eth0 nodad preferred_lft 0" if add else f"addr del {ip}/128 dev eth0"


class Edges6:
    """Racks, the outside world, LoadBalancer and external addresses in IPv6 (see the module)."""

    phase = "controllers"

    def __init__(self, runner: Runner, ledger: Ledger) -> None:
        self.runner, self.ledger = runner, ledger
        self.built = False
        self.announced: dict[str, str] = {}  # IPv6 LB address -> node netns
        self.routes = ServiceRoutes(runner, ledger)  # the IPv6 external IPs' routes, held as the IPv4 ones

    def sync(self, desired: Plan) -> None:
        dual = desired.dual
        if dual is None:
            return
        if not self.built:
            self._build(desired)
            self.built = True
        self._announce(desired)
        self._route(desired)

    def _build(self, desired: Plan) -> None:
        dual = desired.dual
        assert dual is not None
        tag = self.ledger.tag
        # the router's IPv6 side and the routes between racks come with emu/dualstack.py's first
        # sync, before bird2's IPv6 sessions (which may cross racks) start
        text = egress6_nft(dual.pod_subnet)
        for node in desired.nodes:
            rules.nft_load(self.runner, netns_name(tag, node.key), text)

    def _announce(self, desired: Plan) -> None:
        dual = desired.dual
        assert dual is not None
        keys = {n.name: n.key for n in desired.nodes}
        want = {
            ip: netns_name(self.ledger.tag, keys[node])
            for ip, node in edges6.lb_announcers6(desired, dual.lb_ingress).items()
        }
        self.announced = move_announcements(self.runner, self.announced, want)  # IPv6 lines: lb_line6

    def _route(self, desired: Plan) -> None:
        dual = desired.dual
        assert dual is not None
        host6 = {n.name: n.host_ip for n in dual.nodes}
        self.routes.apply(edges6.service_routes6(desired, dual.external_ips, dual.lb_ingress, host6, dual.racks))

    def daemons(self) -> list[Daemon]:
        return []

    def stop(self) -> None:
        """Nothing of its own: the namespaces it configured go with their owners."""
