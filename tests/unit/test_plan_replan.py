"""Reconciling a plan after changes: scale, delete a pod, a rollout's two ReplicaSets (pure)."""

from __future__ import annotations

import dataclasses
import os

from testbed.plan.build import Desired, desired_pods, plan_cluster, replan
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _inputs():
    return (
        load_topology(os.path.join(ROOT, "topologies/three-nodes.yaml")),
        load_manifests([os.path.join(ROOT, "manifests/quickstart-app.yaml")]),
    )


def _scaled(manifests, replicas):
    wl = dataclasses.replace(manifests.workloads[0], replicas=replicas)
    return dataclasses.replace(manifests, workloads=(wl,) + manifests.workloads[1:])


def test_scale_up_keeps_pods_and_adds_new_names_and_ips():
    cluster, manifests = _inputs()
    first = plan_cluster(cluster, manifests, seed=1)
    up = replan(cluster, _scaled(manifests, 6), seed=1, prev=first)
    assert up.pods[: len(first.pods)] == first.pods  # nothing moved, nothing renamed
    new = up.pods[len(first.pods) :]
    kube_dns = up.services.service("kube-system", "kube-dns")
    assert kube_dns.cluster_ip == first.services.service("kube-system", "kube-dns").cluster_ip
    assert len(new) == 3 and all(p.owner == "ReplicaSet/web-66849f5996" for p in new)
    assert not {p.name for p in new} & {p.name for p in first.pods}
    assert not {p.ip for p in new} & {p.ip for p in first.pods}
    assert up.generation == 1
    per_node = {n.name: len(up.pods_on(n.name)) for n in up.nodes}
    assert per_node == {"kind-control-plane": 2, "kind-worker": 4, "kind-worker2": 3}  # + CoreDNS x2


def test_scale_down_removes_the_newest_and_scale_up_again_gives_fresh_ips():
    cluster, manifests = _inputs()
    first = plan_cluster(cluster, manifests, seed=1)
    six = replan(cluster, _scaled(manifests, 6), seed=1, prev=first)
    two = replan(cluster, _scaled(manifests, 2), seed=1, prev=six)
    web = lambda plan: [p for p in plan.pods if p.owner.startswith("ReplicaSet/web")]  # noqa: E731
    assert [p.name for p in web(two)] == [p.name for p in web(six)[:2]]
    back = replan(cluster, _scaled(manifests, 3), seed=1, prev=two)
    newest = web(back)[-1]
    assert newest.ip not in {p.ip for p in six.pods}  # host-local never reuses an IP early


def test_deleted_pod_is_replaced_with_a_new_name_and_ip():
    cluster, manifests = _inputs()
    first = plan_cluster(cluster, manifests, seed=1)
    victim = [p for p in first.pods if p.owner][0]
    after = replan(cluster, manifests, seed=1, prev=first, deleted=frozenset({victim.key}))
    assert victim.key not in {p.key for p in after.pods}
    assert len(after.pods) == len(first.pods)
    replacement = after.pods[-1]
    assert replacement.owner == victim.owner and replacement.name != victim.name and replacement.ip != victim.ip
    assert replacement.uid != victim.uid and replacement.host_veth != victim.host_veth


def test_a_bare_pod_deleted_and_recreated_gets_a_new_ip_and_uid():
    cluster, manifests = _inputs()
    first = plan_cluster(cluster, manifests, seed=1)
    bare = first.find_pod("two-containers")
    gone = replan(cluster, dataclasses.replace(manifests, pods=()), seed=1, prev=first)
    assert gone.find_pod("two-containers") is None
    again = replan(cluster, manifests, seed=1, prev=gone)
    pod = again.find_pod("two-containers")
    assert pod.ip != bare.ip and pod.uid != bare.uid  # scenario 001: a recreated pod gets a new IP


def test_rollout_wishes_two_replicasets_and_same_inputs_same_plans():
    cluster, manifests = _inputs()
    first = plan_cluster(cluster, manifests, seed=1)
    wishes = desired_pods(manifests)
    old = wishes[1]
    new_t = dataclasses.replace(
        old.template, annotations={"rev": "2"}, labels={**old.template.labels, "pod-template-hash": "x"}
    )
    mid = [wishes[0], dataclasses.replace(old, count=2), Desired("ReplicaSet/web-x", "default", "web-x", new_t, 1)]
    step = replan(cluster, manifests, seed=1, prev=first, desired=mid)
    owners = [p.owner for p in step.pods]
    assert owners.count("ReplicaSet/web-66849f5996") == 2 and owners.count("ReplicaSet/web-x") == 1
    again = replan(cluster, manifests, seed=1, prev=first, desired=mid)
    assert again == step
