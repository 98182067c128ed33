"""NetworkPolicy enforcement over IPv6 in a dual-stack cluster (issue 15; emu/).

Beside the IPv4 PolicyProvider (emu/controllers.py), right after it: the same compiler over the
IPv6 policy world (plan/dualstack.py), loaded as its IPv6 twin table (inet testbed-netpol6), with
the same reconcile (whole table, patch or set elements), the policy tiers included (their IPv6
`networks`, pods and nodes). Nothing for an IPv4 plan.
"""

from __future__ import annotations

from ..netpol.compiler import reconcile_rulesets
from ..plan.dualstack import ipv6_script, policy_rulesets6
from ..plan.model import Plan
from ..rules.model import Ruleset
from . import rules
from .controllers import PolicyProvider
from .ledger import netns_name


class PolicyProvider6(PolicyProvider):
    def sync(self, desired: Plan) -> None:
        if desired.dual is None:
            return
        new: dict[str, Ruleset] | None = None
        # v1 policies or the administrator's tiers (compiled into the IPv6 twin too); once loaded,
        # the (empty) table stays
        if desired.policies or desired.tiers or self.loaded is not None:
            new = policy_rulesets6(desired)
        keys = {n.name: n.key for n in desired.nodes}
        changes = reconcile_rulesets(self.loaded or {}, new or {})
        for node, change in sorted(changes.items()):
            rules.nft_load(self.runner, netns_name(self.ledger.tag, keys[node]), ipv6_script(change.script))
        self.loaded = new
        self.actions = {node: change.action for node, change in changes.items()}
