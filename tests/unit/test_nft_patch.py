"""Policy changes as patches of the loaded table (netpol/nft_patch.py): what a patch touches and
when it gives way to a reload. tests/integration/test_nft_patch.py checks in the kernel that a
patched table is the table a reload gives."""

from __future__ import annotations

import dataclasses

from testbed.netpol import compile_cluster, reconcile
from testbed.netpol.compiler import reconcile_rulesets
from testbed.netpol.nft import TABLE
from testbed.netpol.nft_patch import patch

from ._netpol import xyz_world
from .test_cnp_oracle import DENY_Z, PASS_AND_BASELINE, world

NP = "metadata: {name: allow-ns-y, namespace: x}\nspec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]}"
NP2 = "metadata: {name: deny-z, namespace: z}\nspec: {podSelector: {}, ingress: []}"


def test_a_v1_change_under_tiers_patches_and_leaves_the_tier_sets_alone():
    before, after = world(PASS_AND_BASELINE, NP), world(PASS_AND_BASELINE, NP + "\n---\n" + NP2)
    changes = reconcile(before, after)
    assert changes and {c.action for c in changes.values()} == {"patch"}
    tier_sets = {s.name for s in compile_cluster(after)["n0"].table(TABLE).sets if s.name.startswith("t")}
    assert tier_sets  # the tiers' subject and peer sets are in the table...
    for change in changes.values():
        assert not any(name in change.script for name in tier_sets)  # ...and the patch never sends them
        assert "delete table" not in change.script and "flush chain inet testbed-netpol forward" not in change.script


def test_a_new_tier_policy_keeps_the_other_policies_sets():
    before, after = world(PASS_AND_BASELINE, NP), world(PASS_AND_BASELINE + "---" + DENY_Z, NP)
    changes = reconcile(before, after)
    assert {c.action for c in changes.values()} == {"patch"}
    old_sets = {s.name for s in compile_cluster(before)["n0"].table(TABLE).sets}
    script = changes["n0"].script
    assert "add set" in script and not any(f"add set inet testbed-netpol {n} " in script for n in old_sets)


def test_the_first_policy_and_structural_changes_reload():
    empty, one = xyz_world(), xyz_world(NP)
    assert {c.action for c in reconcile(empty, one).values()} == {"load"}  # nothing worth keeping
    old = compile_cluster(one)["n0"]
    table = old.table(TABLE)
    forward = next(c for c in table.chains if c.base)
    moved = dataclasses.replace(forward, priority=(forward.priority or 0) + 1)
    new = dataclasses.replace(
        old, tables=(dataclasses.replace(table, chains=tuple(moved if c is forward else c for c in table.chains)),)
    )
    assert patch(old, new) is None  # a hook's priority cannot be patched
    retyped = tuple(
        dataclasses.replace(s, type="ipv4_addr . inet_service") if s.name.startswith("p0") else s for s in table.sets
    )
    new = dataclasses.replace(old, tables=(dataclasses.replace(table, sets=retyped),))
    assert patch(old, new) is None  # nor a set's declaration under the same name
    assert {c.action for c in reconcile_rulesets({"n0": old}, {"n0": new}).values()} == {"load"}
