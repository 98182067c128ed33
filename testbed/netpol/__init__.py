"""NetworkPolicy: the policy IR, the oracle that explains verdicts, the nft compiler and tracer; pure.

    world = World.from_plan(plan)            # pods, namespaces, nodes, policies
    verdict = decide(Flow("default/busybox", "default/nginx-...", 80, "TCP"), world)
    print(explain_flow(verdict)); print(explain_pod(world, "default/nginx-..."))
    script = node_script(world, "kind-worker")           # text for `nft -f` in that node's netns
    changes = reconcile(old_world, new_world)            # per node: reload, element updates, removal

Nothing here touches the kernel: emu/ runs the scripts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import lazy

if TYPE_CHECKING:  # the package's names, each loaded when first read (testbed/lazy.py): start-up time
    from ..rules.model import Ruleset
    from ..rules.packet import Packet
    from .compiler import NodeChange, compile_cluster, compile_node, node_script, reconcile
    from .explain import explain_flow, explain_pod
    from .model import IPPeer, PodPeer, Policy, PortMatch, Rule, policies_from, policy_from_spec
    from .nft import FAMILY, TABLE, SetUpdate, remove_script, render, set_updates
    from .oracle import Allow, DirectionVerdict, Flow, Miss, Verdict, decide, truth_table
    from .tracer import FlowTrace, render_trace, trace_flow, trace_packet
    from .world import Endpoint, NodeInfo, UnknownEndpoint, World

__all__ = [
    "Allow",
    "DirectionVerdict",
    "Endpoint",
    "FAMILY",
    "Flow",
    "FlowTrace",
    "IPPeer",
    "Miss",
    "NodeChange",
    "NodeInfo",
    "Packet",
    "PodPeer",
    "Policy",
    "PortMatch",
    "Rule",
    "Ruleset",
    "SetUpdate",
    "TABLE",
    "UnknownEndpoint",
    "Verdict",
    "World",
    "compile_cluster",
    "compile_node",
    "decide",
    "explain_flow",
    "explain_pod",
    "node_script",
    "policies_from",
    "policy_from_spec",
    "reconcile",
    "remove_script",
    "render",
    "render_trace",
    "set_updates",
    "trace_flow",
    "trace_packet",
    "truth_table",
]

if not TYPE_CHECKING:  # hidden from type checkers, which keep flagging a name the package lacks
    __getattr__ = lazy.exports(__name__, __file__)
