"""Netfilter rules, pure: one model, its iptables-restore and nft texts, and one packet tracer.

    from testbed.rules import Packet, merge, trace
    from testbed.rules.render_nft import render_commands
    text = render_commands(ruleset.tables)            # or render_iptables.render_restore, render_nft.render_block
    node = merge("kind-worker", kube_proxy_ruleset, policy_ruleset)      # every table the node holds
    print(trace(node, Packet("10.244.1.2", "10.96.0.10", 53, "UDP")).explain())

kube-proxy (kubeproxy/), NetworkPolicy (netpol/compiler.py) and the egress masquerade
(egress.py) compile into `model`; emu/ only loads the rendered text. No kernel, no subprocess.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import lazy

if TYPE_CHECKING:  # the package's names, each loaded when first read (testbed/lazy.py): start-up time
    from .model import Chain, NftMap, NftSet, Rule, Ruleset, Table, check, merge
    from .packet import Packet
    from .tracer import HookTrace, Outcome, Step, Trace, trace, trace_hook

__all__ = [
    "Chain",
    "HookTrace",
    "NftMap",
    "NftSet",
    "Outcome",
    "Packet",
    "Rule",
    "Ruleset",
    "Step",
    "Table",
    "Trace",
    "check",
    "merge",
    "trace",
    "trace_hook",
]

if not TYPE_CHECKING:  # hidden from type checkers, which keep flagging a name the package lacks
    __getattr__ = lazy.exports(__name__, __file__)
