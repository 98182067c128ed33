"""plan/agentshards.py: which agent process serves which pod namespace under an open-files limit."""

from __future__ import annotations

import pytest

from testbed.plan.agentshards import (
    MAX_SHARDS,
    AgentLimitError,
    Group,
    capacity,
    namespace_files,
    plan_shards,
    reserve,
)


def groups(n: int, files: int = 2) -> list[Group]:
    return [Group(f"default/p{i}", files) for i in range(n)]


def loads(assignment: dict[str, int], gs: list[Group]) -> dict[int, int]:
    out: dict[int, int] = {}
    for g in gs:
        out[assignment[g.key]] = out.get(assignment[g.key], 0) + g.files
    return out


def test_one_shard_when_everything_fits():
    gs = groups(100)
    assert set(plan_shards(gs, 20_000).values()) == {0}


def test_the_machine_of_the_defect_needs_two_agents_for_10000_pods():
    # 9,902 pods with a TCP port and the raw SCTP socket each, hard limit 20,000
    gs = groups(9_902)
    out = plan_shards(gs, 20_000)
    assert sorted(set(out.values())) == [0, 1]
    assert all(load <= capacity(20_000) for load in loads(out, gs).values())
    assert capacity(20_000) == 20_000 - reserve(20_000) and reserve(20_000) >= 1024


def test_every_shard_below_capacity_and_every_group_placed():
    gs = [Group(f"ns/p{i}", 1 + i % 4) for i in range(500)]
    out = plan_shards(gs, 100)
    assert set(out) == {g.key for g in gs}
    assert all(load <= capacity(100) for load in loads(out, gs).values())
    assert plan_shards(gs, 100) == out  # deterministic


def test_sticky_groups_keep_their_shard_and_newcomers_fill_the_first_room():
    gs = groups(60)
    first = plan_shards(gs, 100)
    # pods 0-9 leave, 20 new ones come: nobody that stays moves
    later = gs[10:] + [Group(f"default/new{i}", 2) for i in range(20)]
    second = plan_shards(later, 100, first)
    assert all(second[g.key] == first[g.key] for g in gs[10:])
    assert second["default/new0"] == 0  # the room freed in shard 0 is used first
    assert all(load <= capacity(100) for load in loads(second, later).values())


def test_a_group_that_outgrows_its_shard_moves():
    gs = groups(30)
    first = plan_shards(gs, 100)
    grown = [Group(g.key, 40) if g.key == "default/p0" else g for g in gs]
    second = plan_shards(grown, 100, first)
    assert all(load <= capacity(100) for load in loads(second, grown).values())


def test_impossible_limit_is_one_line():
    with pytest.raises(AgentLimitError) as err:
        plan_shards(groups(3), 10)
    text = str(err.value)
    assert "\n" not in text and "default/p0" in text and "open-files limit of 10" in text


def test_too_many_shards_is_one_line():
    with pytest.raises(AgentLimitError) as err:
        plan_shards(groups(MAX_SHARDS * 40), 40)
    assert "\n" not in str(err.value) and str(MAX_SHARDS) in str(err.value)


def test_a_namespace_served_on_ipv6_too_holds_twice_the_sockets():
    # dual-stack (and single-stack IPv6) pods: an IPv6 listener beside each IPv4 one, and a raw
    # IPv6 SCTP socket beside the IPv4 one (agent/server.py)
    assert namespace_files(2, False) == 3
    assert namespace_files(2, True) == 6
    assert namespace_files(0, True) == 2


def test_the_launcher_counts_the_ipv6_sockets_of_dual_stack_pods(tmp_path):
    import os

    from testbed.emu.agent_proc import _groups
    from testbed.emu.dualstack import agent_ipv6
    from testbed.emu.ledger import netns_name
    from testbed.emu.pods import NETNS_DIR
    from testbed.plan.build import plan_cluster
    from testbed.spec.topology import load_topology
    from testbed.spec.workloads import load_manifests

    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    app = tmp_path / "app.yaml"
    app.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  nodeName: kind-worker\n"
        "  containers: [{name: c, image: nginx, ports: [{containerPort: 80}, {containerPort: 8080}, "
        "{containerPort: 53, protocol: UDP}, {containerPort: 9, protocol: SCTP}]}]\n"
    )
    plan = plan_cluster(load_topology(os.path.join(root, "topologies", "dual-stack.yaml")), load_manifests([str(app)]))
    paths = agent_ipv6(plan, "t1")
    keys = {p.key for p in plan.pods if f"{NETNS_DIR}/{netns_name('t1', p.key)}" in paths}
    web = plan.find_pod("web")
    assert web is not None and web.key in keys
    both = {g.key: g.files for g in _groups(plan.pods, (), keys)}
    ipv4 = {g.key: g.files for g in _groups(plan.pods, ())}
    assert ipv4[web.key] == 4 and both[web.key] == 8  # 3 TCP/UDP ports + raw SCTP, per family
