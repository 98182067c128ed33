"""emu/podfiles.py's pod_files with a memo: the texts of a pod that is the same object as at the
last call (a replan keeps the PodPlans of unchanged pods) are kept, not computed again, and are
what pod_files computes without it; a new pod, or another DNS server, computes them anew."""

from __future__ import annotations

import dataclasses

from testbed.emu.podfiles import Memo, pod_files
from testbed.plan.build import plan_cluster

from ._services import world


def test_the_memo_gives_what_pod_files_computes_and_keeps_the_texts_of_unchanged_pods():
    topology, manifests, _, _ = world()
    plan = plan_cluster(topology, manifests, 1)
    memo: Memo = {}
    first = pod_files(plan, "abcd", memo)
    assert first == pod_files(plan, "abcd") and len(memo) == len(plan.pods)
    # a replan that keeps every pod object but one, which comes back as a new (equal) object
    pods = list(plan.pods)
    pods[0] = dataclasses.replace(pods[0])
    again = dataclasses.replace(plan, pods=tuple(pods))
    second = pod_files(again, "abcd", memo)
    assert second == pod_files(again, "abcd") == first
    name = next(iter(first))  # the texts of the pods kept are the very same objects
    kept = [n for n in first if n != name]
    assert all(second[n] is first[n] for n in kept)
    # another DNS server: every pod's resolv.conf is computed again
    moved = dataclasses.replace(again)
    moved.__dict__["dns_server"] = "10.96.0.99"  # the Plan's cached kube-dns ClusterIP
    third = pod_files(moved, "abcd", memo)
    assert third == pod_files(moved, "abcd") and third != second
    assert all("10.96.0.99" in third[n][0] for n in third if "10.96.0.10" in second[n][0])
    # pods that left are dropped from the memo (it holds them alive, by identity)
    fewer = dataclasses.replace(moved, pods=moved.pods[1:])
    pod_files(fewer, "abcd", memo)
    assert len(memo) == len(plan.pods) - 1 and id(pods[0]) not in memo
