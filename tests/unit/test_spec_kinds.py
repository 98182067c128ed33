"""Every Kubernetes kind is accepted (spec/kinds.py): built-in kinds validated against Kubernetes'
schema and noted, custom resources noted, typos refused with a did-you-mean; the Online Boutique
release manifests plan unmodified."""

from __future__ import annotations

import pathlib

import pytest

from testbed.errors import SpecError
from testbed.plan.build import plan_cluster
from testbed.spec.kinds import summary
from testbed.spec.topology import load_topology

REPO = pathlib.Path(__file__).resolve().parents[2]
BOUTIQUE = pathlib.Path(__file__).parent / "data" / "realworld" / "online-boutique" / "kubernetes-manifests.yaml"
THREE = str(REPO / "topologies" / "three-nodes.yaml")

SA = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa%d}\n"
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm%d}\ndata: {a: b}\n"


def test_non_networking_kinds_are_noted_in_one_line(manifests):
    m = manifests(
        "---\n".join(
            [SA % i for i in range(3)]
            + [CM % i for i in range(2)]
            + [
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
                "metadata: {name: r, namespace: ignored}\nrules: []\n"
            ]
        )
    )
    assert summary(m.others) == (
        [],
        ["3 ServiceAccount, 2 ConfigMap, 1 ClusterRole: not emulated, no effect on the network"],
    )
    assert [o.ref.namespace for o in m.others] == ["default"] * 5 + [""]  # ClusterRole is cluster-scoped


def test_pod_controllers_are_emulated_not_noted(manifests):
    m = manifests("""
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {name: db}
        spec:
          serviceName: db
          selector: {matchLabels: {app: db}}
          template:
            metadata: {labels: {app: db}}
            spec: {containers: [{name: db, image: postgres}]}
        ---
        apiVersion: batch/v1
        kind: CronJob
        metadata: {name: nightly}
        spec:
          schedule: "0 0 * * *"
          jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: x}]}}}}
    """)
    assert summary(m.others) == ([], [])
    assert [w.ref.kind for w in m.workloads] == ["StatefulSet", "CronJob"]
    plan = plan_cluster(load_topology(THREE), m)
    assert not any("not emulated" in w for w in plan.warnings)
    assert [p.name for p in plan.pods if p.namespace == "default"] == ["db-0"]  # the CronJob waits for a trigger


def test_custom_resources_are_noted_not_refused(manifests):
    m = manifests("""
        apiVersion: cert-manager.io/v1
        kind: Certificate
        metadata: {name: tls}
        spec: {anything: [goes, here]}
        ---
        apiVersion: serving.knative.dev/v1
        kind: Service
        metadata: {name: hello}
    """)
    assert [(o.ref.kind, o.builtin) for o in m.others] == [("Certificate", False), ("Service", False)]
    assert m.services == ()  # a Knative Service is no v1 Service
    assert summary(m.others)[1] == [
        "1 Certificate (cert-manager.io/v1), 1 Service (serving.knative.dev/v1): "
        "custom resources, not emulated (their controllers do not run here)"
    ]


@pytest.mark.parametrize(
    "kind,api,path,fragment",
    [
        ("Deploymnet", "apps/v1", "kind", "unknown kind 'Deploymnet'; did you mean 'Deployment'?"),
        ("Servce", "v1", "kind", "did you mean 'Service'?"),
        ("configmap", "v1", "kind", "did you mean 'ConfigMap'?"),
        ("StorageClass", "apps/v1", "apiVersion", "StorageClass is served as apiVersion 'storage.k8s.io/v1'"),
        ("Ingress", "extensions/v1beta1", "apiVersion", "served as apiVersion 'networking.k8s.io/v1'"),
        ("ConfigMap", "apps/v1", "apiVersion", "ConfigMap is served as apiVersion 'v1'"),
    ],
)
def test_neither_builtin_nor_custom_is_an_error_with_a_hint(manifests, kind, api, path, fragment):
    with pytest.raises(SpecError) as err:
        manifests(f"apiVersion: {api}\nkind: {kind}\nmetadata: {{name: x}}\n")
    (problem,) = err.value.problems
    assert problem.path == path and fragment in problem.message


def test_known_list_names_the_networking_kinds(manifests):
    with pytest.raises(SpecError) as err:
        manifests("apiVersion: v1\nkind: Zorglub\nmetadata: {name: x}\n")
    message = err.value.problems[0].message
    for kind in ("Service", "NetworkPolicy", "Ingress", "IngressClass", "Deployment", "Pod", "Namespace"):
        assert kind in message.split("known: ")[1]
    assert "did you mean" not in message


def test_malformed_configmap_names_file_object_and_field(manifests):
    with pytest.raises(SpecError) as err:
        manifests(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: default}\n"
            "data: {port: 8080}\nimmutable: maybe\nbinaryDat: {}\n"
        )
    lines = str(err.value).splitlines()
    assert len(lines) == 3
    assert all("manifest-0.yaml (ConfigMap default/cfg): " in line for line in lines)
    assert any(line.endswith("binaryDat: unknown field 'binaryDat'") for line in lines)
    assert any(line.endswith("data.port: expected string, got 8080") for line in lines)
    assert any(line.endswith("immutable: expected boolean, got 'maybe'") for line in lines)


def test_schema_problems_are_bounded_per_object(manifests):
    data = ", ".join(f"k{i}: {i}" for i in range(50))
    with pytest.raises(SpecError) as err:
        manifests(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cfg}}\ndata: {{{data}}}\n")
    assert len(err.value.problems) == 6
    assert err.value.problems[-1].message == "and 45 more schema problems"


def test_other_kinds_need_their_namespace_and_unique_names(manifests):
    with pytest.raises(SpecError, match="namespace 'ghost' does not exist"):
        manifests("apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: ghost}\n")
    with pytest.raises(SpecError, match="duplicate ConfigMap default/cm0"):
        manifests(CM % 0 + "---\n" + CM % 0)


def test_online_boutique_release_manifests_plan_unmodified():
    from testbed.spec.workloads import load_manifests

    m = load_manifests([str(BOUTIQUE)])
    assert len(m.workloads) == 12 and len(m.services) == 12 and len(m.others) == 11
    plan = plan_cluster(load_topology(THREE), m)
    assert "11 ServiceAccount: not emulated, no effect on the network" in plan.notes
    apps = {p.owner.split("/")[1].rsplit("-", 1)[0] for p in plan.pods if p.namespace == "default"}
    assert len(apps) == 12 and not plan.pending
    lb = next(s for s in plan.services.services if s.name == "frontend-external")
    assert lb.type == "LoadBalancer" and lb.load_balancer_ingress


def test_typed_lists_as_kubectl_get_writes_them(manifests):
    m = manifests("""
        apiVersion: v1
        kind: ConfigMapList
        items:
          - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
          - {apiVersion: v1, kind: ServiceAccount, metadata: {name: b}}
        ---
        apiVersion: apps/v1
        kind: DeploymentList
        metadata: {resourceVersion: "1"}
        items: []
    """)
    assert [o.ref.name for o in m.others] == ["a", "b"]
