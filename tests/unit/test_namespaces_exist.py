"""Every namespaced object, Services and NetworkPolicies included, needs its namespace."""

import pytest

from testbed.errors import SpecError
from testbed.spec.workloads import load_manifests


@pytest.mark.parametrize(
    "doc",
    [
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: ghost}\nspec: {ports: [{port: 80}]}\n",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: ghost}\n"
        "spec: {podSelector: {}}\n",
    ],
)
def test_objects_in_a_missing_namespace_are_rejected(tmp_path, doc):
    path = tmp_path / "m.yaml"
    path.write_text(doc)
    with pytest.raises(SpecError) as err:
        load_manifests([str(path)])
    assert "metadata.namespace: namespace 'ghost' does not exist" in str(err.value)
    path.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: ghost}\n---\n" + doc)
    assert load_manifests([str(path)])
