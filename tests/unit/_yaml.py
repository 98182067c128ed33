"""YAML builders shared by the unit tests that plan clusters: a kind cluster, a Deployment.

Tests about the loaders themselves keep their YAML inline: there the text is the subject.
"""

from __future__ import annotations

import textwrap


def kind_cluster(workers: int = 2, testbed_config: str = "") -> str:
    """A kind Cluster of one control plane and `workers` workers; with `testbed_config`, a
    TestbedConfig document whose body is that YAML text (dedented)."""
    roles = ", ".join(["{role: control-plane}"] + ["{role: worker}"] * workers)
    text = f"kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes: [{roles}]\n"
    if testbed_config:
        text += (
            "---\napiVersion: testbed/v1alpha1\nkind: TestbedConfig\n"
            + textwrap.dedent(testbed_config).strip("\n")
            + "\n"
        )
    return text


def deployment(replicas: int, pod_spec: str = "") -> str:
    """A Deployment `web` (app=web) of `replicas` pods; `pod_spec` adds one line to the pod spec."""
    return f"""
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: web}}
        spec:
          replicas: {replicas}
          selector: {{matchLabels: {{app: web}}}}
          template:
            metadata: {{labels: {{app: web}}}}
            spec:
              containers: [{{name: app}}]
              {pod_spec}
    """


def v1_list(*items: str) -> str:
    """A `kind: List` document holding `items` (each a YAML mapping, as text)."""
    out = "apiVersion: v1\nkind: List\nitems:\n"
    for item in items:
        first, *rest = textwrap.dedent(item).strip("\n").splitlines()
        out += f"  - {first}\n" + "".join(f"    {line}\n" for line in rest)
    return out
