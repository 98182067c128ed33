"""The labels a kind node carries: kubelet's, kubeadm's, kind's, and `node-labels` patches.

Used by spec/topology.py when it names the nodes. Manifests select nodes by these well-known
labels (`nodeSelector: {beta.kubernetes.io/os: linux}` is common in public manifests), so a
node without them leaves such pods Pending where a real cluster runs them.

- kubelet: `kubernetes.io/hostname`, `kubernetes.io/os`, `kubernetes.io/arch` and their
  deprecated `beta.kubernetes.io/` forms (kubelet still sets both);
- kubeadm, on control-plane nodes: `node-role.kubernetes.io/control-plane` and
  `node.kubernetes.io/exclude-from-external-load-balancers` (kind keeps the latter even on a
  single-node cluster, where it removes the control-plane taint);
- racks: the testbed's underlay racks are its failure domains, so each rack is a zone
  (`topology.kubernetes.io/zone=<rack>`) of one region named after the cluster — set only when
  the topology declares racks, as cloud providers set them only where zones exist;
- kind's `kubeadmConfigPatches` carrying InitConfiguration/JoinConfiguration
  `nodeRegistration.kubeletExtraArgs.node-labels` (kind's `ingress-ready=true` idiom): kubelet's
  `--node-labels` flag, applied. InitConfiguration patches the first control-plane node,
  JoinConfiguration every other node; a cluster-wide patch applies to every node, a node's own
  patch to that node only.
"""

from __future__ import annotations

import platform
from typing import Any

from ..errors import SpecError
from .decode import Doc, load_text
from .labels import check_labels

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
EXCLUDE_FROM_LB = "node.kubernetes.io/exclude-from-external-load-balancers"
ZONE, REGION = "topology.kubernetes.io/zone", "topology.kubernetes.io/region"
# Go's GOARCH names, as kubelet reports them (runtime.GOARCH).
_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
MAX_PATCH_LABELS = 100


def machine_arch() -> str:
    return _GOARCH.get(platform.machine().lower(), "amd64")


def kubelet_labels(node_name: str, role: str) -> dict[str, str]:
    """What kubelet and kubeadm put on a fresh node of this role."""
    arch = machine_arch()
    labels = {
        "kubernetes.io/hostname": node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch,
    }
    if role == "control-plane":
        labels[CONTROL_PLANE_LABEL] = ""
        labels[EXCLUDE_FROM_LB] = ""
    return labels


def zone_labels(cluster: str, rack: str) -> dict[str, str]:
    return {ZONE: rack, REGION: cluster}


def patch_labels(patches: Doc) -> tuple[dict[str, str], dict[str, str], bool]:
    """(labels for the bootstrap node, labels for joining nodes, whether any patch was not
    only node-labels) from a `kubeadmConfigPatches` list of YAML strings."""
    init: dict[str, str] = {}
    join: dict[str, str] = {}
    other = False
    if not isinstance(patches.value, list):
        if patches.present():
            patches.error("expected a list of kubeadm config patches")
        return init, join, other
    for i, text in enumerate(patches.value):
        pdoc = patches.child(i, text)
        if not isinstance(text, str):
            pdoc.error("expected a string holding a kubeadm config patch")
            continue
        try:
            docs = load_text(text, pdoc.file)
        except SpecError as exc:
            pdoc.error(f"not a YAML patch: {exc.problems[0].message}")
            continue
        for _, raw in docs:
            found = _node_labels(pdoc, raw)
            if found is None:
                other = True
                continue
            kind, labels = found
            (init if kind == "InitConfiguration" else join).update(labels)
            if set(raw) - {"kind", "apiVersion", "nodeRegistration"} or set(raw.get("nodeRegistration") or {}) - {
                "kubeletExtraArgs"
            }:
                other = True
    return init, join, other


def _node_labels(pdoc: Doc, raw: Any) -> tuple[str, dict[str, str]] | None:
    """(kind, labels) of an Init/JoinConfiguration patch that sets node-labels, else None."""
    if not isinstance(raw, dict) or raw.get("kind") not in ("InitConfiguration", "JoinConfiguration"):
        return None
    registration = raw.get("nodeRegistration")
    args = registration.get("kubeletExtraArgs") if isinstance(registration, dict) else None
    value: Any = None
    if isinstance(args, dict):  # kubeadm v1beta3: a map
        value = args.get("node-labels")
    elif isinstance(args, list):  # kubeadm v1beta4: a list of {name, value}
        value = next((a.get("value") for a in args if isinstance(a, dict) and a.get("name") == "node-labels"), None)
    if value is None:
        return None
    field = Doc(
        value, pdoc.file, pdoc.problems, f"{pdoc.path}: nodeRegistration.kubeletExtraArgs.node-labels", pdoc.document
    )
    if not isinstance(value, str):
        field.error("expected a string such as 'ingress-ready=true'")
        return raw["kind"], {}
    labels: dict[str, str] = {}
    for item in [p.strip() for p in value.split(",") if p.strip()][:MAX_PATCH_LABELS]:
        key, eq, val = item.partition("=")
        if not eq:
            field.error(f"{item!r} is not key=value")
            continue
        labels[key.strip()] = val.strip()
    check_labels(field, labels)
    return raw["kind"], labels
