"""Kubernetes-style generated names (plan/naming.py, plan/build.py).

kube-controller-manager names a Deployment's ReplicaSet <deployment>-<pod-template-hash>, where the
hash is rand.SafeEncodeString(fmt.Sprint(fnv32a(template))): the decimal digits of a uint32 (1 to
10 of them, so the hash may be shorter than 10) each mapped into the "safe" alphabet. Pods get
<generateName><5 random safe chars> (names.SimpleNameGenerator), with generateName = "<owner>-"
cut to 58 characters so that a generated name never exceeds 63.
"""

from __future__ import annotations

import re
import uuid

import pytest

from testbed.plan.naming import ALPHANUMS, NameSource, fnv32a, host_veth_name, safe_encode, template_hash
from testbed.spec.model import Container, ContainerPort, PodTemplate

SAFE = "bcdfghjklmnpqrstvwxz2456789"
DEPLOYMENT_POD = re.compile(rf"^web-[{SAFE}]{{1,10}}-[{SAFE}]{{5}}$")
HASH_CHARS = "456789bcdf"  # what the digits 0-9 map to: SAFE[ord(d) % 27]

THREE_NODES = """
    kind: Cluster
    apiVersion: kind.x-k8s.io/v1alpha4
    nodes: [{role: control-plane}, {role: worker}, {role: worker}]
"""


def _deployment(name: str = "web", replicas: int = 3, port: int = 80) -> str:
    return f"""
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: {name}}}
        spec:
          replicas: {replicas}
          selector: {{matchLabels: {{app: {name[:63]}}}}}
          template:
            metadata: {{labels: {{app: {name[:63]}}}}}
            spec:
              containers: [{{name: app, ports: [{{containerPort: {port}}}]}}]
    """


def test_alphabet_is_kubernetes_safe_alphabet():
    assert ALPHANUMS == SAFE
    assert not set("aeiou013") & set(ALPHANUMS)


@pytest.mark.parametrize(
    "data,expected",
    [
        (b"", 0x811C9DC5),
        (b"a", 0xE40C292C),
        (b"foobar", 0xBF9CF968),
    ],
)
def test_fnv32a_reference_vectors(data, expected):
    assert fnv32a(data) == expected


def test_safe_encode_maps_each_character():
    assert safe_encode("0123456789") == HASH_CHARS
    assert safe_encode("") == ""
    # a 9-digit uint32 gives a 9-character hash, as in Kubernetes
    assert safe_encode(str(123456789)) == "56789bcdf"


def test_template_hash_is_stable_and_sensitive():
    t = PodTemplate({"app": "web"}, (Container("app", (ContainerPort(80),)),))
    same = PodTemplate({"app": "web"}, (Container("app", (ContainerPort(80),)),))
    other = PodTemplate({"app": "web"}, (Container("app", (ContainerPort(81),)),))
    assert template_hash(t) == template_hash(same)
    assert template_hash(t) != template_hash(other)
    assert re.fullmatch(rf"[{HASH_CHARS}]{{1,10}}", template_hash(t))


def test_deployment_pods_look_like_kubernetes(plan_of):
    plan = plan_of(THREE_NODES, _deployment(replicas=5))
    assert len(plan.pods) == 5
    rs = {p.owner for p in plan.pods}
    assert len(rs) == 1
    (owner,) = rs
    assert re.fullmatch(rf"ReplicaSet/web-[{HASH_CHARS}]{{1,10}}", owner)
    for pod in plan.pods:
        assert DEPLOYMENT_POD.match(pod.name), pod.name
        assert pod.name.startswith(owner.split("/", 1)[1] + "-")
        assert pod.labels == {"app": "web", "pod-template-hash": owner.split("web-", 1)[1]}
        assert pod.key == f"default_{pod.name}"
    assert len({p.name for p in plan.pods}) == 5


def test_replicas_do_not_change_the_template_hash_but_the_template_does(plan_of):
    three = plan_of(THREE_NODES, _deployment(replicas=3))
    six = plan_of(THREE_NODES, _deployment(replicas=6))
    changed = plan_of(THREE_NODES, _deployment(replicas=3, port=8080))
    assert {p.owner for p in three.pods} == {p.owner for p in six.pods}
    assert {p.owner for p in three.pods} != {p.owner for p in changed.pods}
    # Scaling up keeps the names of the first replicas (same seeded stream per ReplicaSet).
    assert [p.name for p in six.pods[:3]] == [p.name for p in three.pods]


def test_replicaset_and_rc_pods_are_owner_dash_five(plan_of):
    plan = plan_of(
        THREE_NODES,
        """
        apiVersion: apps/v1
        kind: ReplicaSet
        metadata: {name: front-end}
        spec:
          replicas: 2
          selector: {matchLabels: {app: fe}}
          template:
            metadata: {labels: {app: fe}}
            spec: {containers: [{name: app}]}
        ---
        apiVersion: v1
        kind: ReplicationController
        metadata: {name: legacy}
        spec:
          replicas: 2
          template:
            metadata: {labels: {app: legacy}}
            spec: {containers: [{name: app}]}
    """,
    )
    rs = [p for p in plan.pods if p.owner == "ReplicaSet/front-end"]
    rc = [p for p in plan.pods if p.owner == "ReplicationController/legacy"]
    assert len(rs) == 2 and len(rc) == 2
    for pod in rs:
        assert re.fullmatch(rf"front-end-[{SAFE}]{{5}}", pod.name)
        assert pod.labels == {"app": "fe"}  # no pod-template-hash: only a Deployment's ReplicaSet has one
    for pod in rc:
        assert re.fullmatch(rf"legacy-[{SAFE}]{{5}}", pod.name)
        assert pod.labels == {"app": "legacy"}


def test_bare_pods_keep_their_names(plan_of):
    plan = plan_of(
        THREE_NODES,
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: client, labels: {run: client}}
        spec: {containers: [{name: app}]}
    """,
    )
    (pod,) = plan.pods
    assert (pod.name, pod.owner, pod.key, pod.labels) == ("client", "", "default_client", {"run": "client"})


def test_user_pod_template_hash_label_is_overwritten(plan_of):
    plan = plan_of(
        THREE_NODES,
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web, pod-template-hash: mine}}
            spec: {containers: [{name: app}]}
    """,
    )
    (pod,) = plan.pods
    assert pod.labels["pod-template-hash"] == pod.owner.rsplit("-", 1)[1] != "mine"


def test_long_names_are_cut_like_generate_name(plan_of):
    name = "a" * 60
    plan = plan_of(THREE_NODES, _deployment(name=name, replicas=2))
    for pod in plan.pods:
        assert len(pod.name) == 63
        rs = pod.owner.split("/", 1)[1]
        assert pod.name[:58] == f"{rs}-"[:58]
        assert re.fullmatch(rf"[{SAFE}]{{5}}", pod.name[58:])


def test_uids_are_valid_version_4_uuids_and_veths_fit_ifnamsiz():
    names = NameSource(3)
    uids = [names.uid(f"default/p{i}") for i in range(50)]
    for text in uids:
        u = uuid.UUID(text)
        assert str(u) == text
        assert (u.version, u.variant) == (4, uuid.RFC_4122)
        veth = host_veth_name(text)
        assert re.fullmatch(r"veth[0-9a-f]{8}", veth) and len(veth) <= 15
    assert len(set(uids)) == 50
    assert NameSource(3).uid("default/p0") == uids[0]
    assert NameSource(4).uid("default/p0") != uids[0]


def test_suffix_streams_are_per_owner_and_seeded():
    a, b = NameSource(1), NameSource(1)
    assert [a.suffix("ns/x") for _ in range(3)] == [b.suffix("ns/x") for _ in range(3)]
    # Interleaving another owner does not shift this owner's stream.
    c = NameSource(1)
    first = c.suffix("ns/x")
    c.suffix("ns/y")
    assert [first, c.suffix("ns/x")] == [NameSource(1).suffix("ns/x"), _second(NameSource(1), "ns/x")]
    assert NameSource(2).suffix("ns/x") != NameSource(1).suffix("ns/x")
    assert all(ch in SAFE for ch in a.suffix("ns/z", 20))


def _second(names: NameSource, owner: str) -> str:
    names.suffix(owner)
    return names.suffix(owner)
