"""kube-proxy's partial syncs give what a full sync gives.

Each tool's input is replayed on a small model of what the kernel keeps (`iptables-restore
--noflush`: chains and their rules per table; `nft -f`: chains, sets with their elements, maps
with theirs). Through a sequence of changes of the fixture's Services (endpoints leaving,
not ready, terminating, every endpoint gone, a Service removed and back, a changed affinity
timeout and traffic policy), applying each partial sync to what the previous ones left must give
exactly the state a full load of the same ruleset gives on a fresh node, on every node and in
both modes; and each partial text names only what changed.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from testbed.kubeproxy import build_ruleset, render
from testbed.kubeproxy.partial import needs_full_sync, render_sync
from testbed.plan.services import update_endpoints

from ._services import NODES, POD_SUBNET, world

# -- models of what each tool leaves in the kernel ------------------------------------------------


def iptables_apply(state: dict[str, dict[str, list[str]]], text: str) -> None:
    """`iptables-restore --noflush` on {table: {chain: [rule]}} (user chains only)."""
    table: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            table = state.setdefault(line[1:], {})
        elif line.startswith(":"):
            table[line[1:].split()[0]] = []  # creates, or flushes an existing chain
        elif line.startswith("-A "):
            _, chain, rule = line.split(" ", 2)
            table[chain].append(rule)
        elif line.startswith("-X "):
            name = line.split()[1]
            assert table.pop(name) == [], f"-X of a non-empty chain {name}"
        else:
            raise AssertionError(f"unexpected line {line!r}")


_ADD = re.compile(r"^add (set|map|chain) ip kube-proxy (\S+)(.*)$")
_ELEMENT = re.compile(r"^(add|delete) element ip kube-proxy (\S+) \{ (.*) \}$")


def nft_apply(state: dict[str, dict], text: str) -> None:
    """`nft -f` on {"chains": {name: [rule]}, "sets": {name: (decl, {element})}, "maps": {name: (decl, {key: element})}}."""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("add table"):
            for kind in ("chains", "sets", "maps"):
                state.setdefault(kind, {})
        elif line.startswith("delete table"):
            state.clear()
        elif m := _ADD.match(line):
            kind, name, decl = m.groups()
            if kind == "chain":
                state["chains"].setdefault(name, [])
            else:
                state[kind + "s"].setdefault(name, (decl.strip(), {}))
        elif line.startswith("flush chain ip kube-proxy "):
            state["chains"][line.split()[-1]] = []
        elif line.startswith("delete chain ip kube-proxy "):
            del state["chains"][line.split()[-1]]
        elif line.startswith("delete set ip kube-proxy "):
            del state["sets"][line.split()[-1]]
        elif line.startswith("add rule ip kube-proxy "):
            chain, rule = line.split(" ", 5)[4:]
            state["chains"][chain].append(rule)
        elif m := _ELEMENT.match(line):
            op, name, body = m.groups()
            container = state["maps"][name][1] if name in state["maps"] else state["sets"][name][1]
            key = re.split(r" comment | : ", body)[0].strip()
            if op == "add":
                assert key not in container, f"{name}: {key} added twice"
                container[key] = body
            else:
                del container[key]
        else:
            raise AssertionError(f"unexpected line {line!r}")


def apply(mode: str, state: dict, text: str) -> None:
    (iptables_apply if mode == "iptables" else nft_apply)(state, text)


# -- the changes ------------------------------------------------------------------------------------


def _without(plan, name: str):
    return dataclasses.replace(
        plan,
        services=tuple(s for s in plan.services if s.name != name),
        slices=tuple(s for s in plan.slices if s.service != name),
    )


def _edit(plan, name: str, **changes):
    return dataclasses.replace(
        plan, services=tuple(dataclasses.replace(s, **changes) if s.name == name else s for s in plan.services)
    )


def sequence():
    _, _, pods, base = world()
    web = sorted(p.name for p in pods if p.name.startswith("web-") and p.name != "web-canary")
    no_canary = update_endpoints(base, [p for p in pods if p.name != "web-canary"])
    return [
        ("base", base),
        ("canary gone", no_canary),
        ("a web pod not ready", update_endpoints(base, pods, not_ready=[web[0]])),
        ("a web pod terminating", update_endpoints(base, pods, terminating=[web[1]])),
        ("web-sticky removed", _without(base, "web-sticky")),
        ("web-sticky back, timeout 60", _edit(base, "web-sticky", affinity_timeout=60)),
        ("web-lb external policy Local", _edit(base, "web-lb", external_traffic_policy="Local")),
        ("every endpoint gone", update_endpoints(base, [])),
        ("base again", base),
    ]


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
@pytest.mark.parametrize("node", sorted(NODES))
def test_partial_syncs_through_changes_equal_a_full_sync(node, mode):
    host_ip, _ = NODES[node]
    steps = sequence()
    rulesets = [(what, build_ruleset(plan, node, host_ip, POD_SUBNET, mode)) for what, plan in steps]
    live: dict = {}
    first = render_sync(rulesets[0][1], None, needs_full_sync(None, False, 0.0))
    assert first.full
    apply(mode, live, first.text)
    partial_texts = 0
    for (_, previous), (what, ruleset) in zip(rulesets, rulesets[1:]):
        sync = render_sync(ruleset, previous, full=False)
        assert not sync.full, what
        apply(mode, live, sync.text)
        fresh: dict = {}
        apply(mode, fresh, render(ruleset))
        assert live == fresh, what
        partial_texts += bool(sync.text)
    assert partial_texts >= len(steps) - 2  # a change may not touch this node; most do
    assert render_sync(rulesets[-1][1], rulesets[-1][1], full=False).text == ""  # nothing changed


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_a_partial_sync_names_only_the_changed_service(mode):
    """The canary leaves, which only Service web-all selects: the text touches web-all's chains,
    never another Service's."""
    _, _, pods, base = world()
    node = "kind-worker"
    host_ip, _ = NODES[node]
    before = build_ruleset(base, node, host_ip, POD_SUBNET, mode)
    after = build_ruleset(
        update_endpoints(base, [p for p in pods if p.name != "web-canary"]), node, host_ip, POD_SUBNET, mode
    )
    text = render_sync(after, before, full=False).text
    assert text and len(text) < len(render(after, before)) / 2
    others = ("default/web-sticky", "default/web-nodeport", "default/web-lb", "default/db", "default/nobody")
    others += ("default/web:", "default/web/")  # Service web's own comments and nft chain names
    touched = [l for l in text.splitlines() if l.startswith((":", "-A ", "flush chain", "add rule"))]
    if mode == "nftables":
        assert touched and all("default/web-all/" in l for l in touched if "add rule" not in l)
    for line in touched:
        assert not any(o in line for o in others), line


def test_needs_full_sync_as_upstream():
    assert needs_full_sync(None, False, 0.0)  # never synced
    rs = build_ruleset(world()[3], "kind-worker", NODES["kind-worker"][0], POD_SUBNET, "iptables")
    assert not needs_full_sync(rs, False, 10.0)
    assert needs_full_sync(rs, True, 10.0)  # the last sync failed
    assert needs_full_sync(rs, False, 3601.0)  # an hour since the last full sync
    assert needs_full_sync(rs, False, 11.0, period=10.0)
