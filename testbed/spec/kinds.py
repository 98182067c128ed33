"""Every Kubernetes kind the testbed does not emulate: recognised, validated, noted.

Sits in spec/ beside workloads.py, which decodes the kinds that shape the network
(Namespace, Pod, the pod controllers, Service, NetworkPolicy, Ingress, IngressClass) and hands
every other object here. Kubernetes' own OpenAPI schemas, as shipped by the maintained package
`kubernetes-validate` (offline, inside the wheel), say which (apiVersion, kind) pairs are
built in and what a valid object of each looks like:

- a built-in kind is validated against its strict schema (unknown fields are errors, as with
  kubectl's strict field validation) and kept as an `OtherObject` for the one-line summary;
- an object whose API group Kubernetes does not have is a custom resource: noted, not refused
  (its schema is its CustomResourceDefinition's, which a real API server would check) — except
  the Network Policy API's kinds (NETWORK_POLICY_API), which the testbed models: they go to
  spec/cnp.py, and one under an apiVersion that does not serve it is refused;
- anything else — a typo such as `Deploymnet`, or a kind under an apiVersion that does not
  serve it — is a problem with a did-you-mean.

Schemas are loaded once per process and one validator is built per distinct (apiVersion, kind),
so validating thousands of ConfigMaps costs one schema load.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from ..errors import excerpt
from .decode import Doc
from .model import ObjectRef

# The Kubernetes version whose schemas we validate against: the newest that the pinned
# kubernetes-validate ships (kind node images follow Kubernetes releases closely).
_SCHEMA_PACKAGE = "kubernetes_validate"
# Custom resources the testbed models itself (spec/cnp.py, issue 17): kind -> (apiVersion, decoder).
NETWORK_POLICY_API = {
    "ClusterNetworkPolicy": ("policy.networking.k8s.io/v1alpha2", "decode_cnp"),
    "AdminNetworkPolicy": ("policy.networking.k8s.io/v1alpha1", "decode_anp"),
    "BaselineAdminNetworkPolicy": ("policy.networking.k8s.io/v1alpha1", "decode_banp"),
}
_NETWORK_POLICY_GROUP = "policy.networking.k8s.io"
# Problems reported per object at most: a schema mismatch deep in a list repeats itself.
MAX_PROBLEMS_PER_OBJECT = 5


@dataclass(frozen=True)
class OtherObject:
    """An object of a kind that is not emulated: where it came from, and whether Kubernetes
    has that kind built in (False: a custom resource)."""

    ref: ObjectRef
    api_version: str
    builtin: bool


@dataclass(frozen=True)
class Catalog:
    """Kubernetes' built-in kinds: apiVersion -> kinds it serves, and kind -> apiVersions."""

    version: str
    by_api: dict[str, frozenset[str]]
    by_kind: dict[str, tuple[str, ...]]
    groups: frozenset[str]  # API groups ("" = core) Kubernetes has
    namespaced: dict[tuple[str, str], bool]


@functools.lru_cache(maxsize=1)
def _schema_dir() -> tuple[Any, str]:
    """The strict schemas (unknown fields are errors) of the newest version the package ships."""
    from kubernetes_validate.utils import latest_version  # deferred: only when a kind needs a schema

    version = latest_version()
    return files(_SCHEMA_PACKAGE).joinpath("kubernetes-json-schema", f"v{version}-local-strict"), version


@functools.lru_cache(maxsize=1)
def _definitions() -> tuple[dict[str, Any], str]:
    folder, version = _schema_dir()
    return json.loads(folder.joinpath("_definitions.json").read_text(encoding="utf-8")), version


# Cluster-scoped built-in kinds (the OpenAPI documents do not say; the API server's discovery
# does). Only used to ignore metadata.namespace on them, as kubectl does.
_CLUSTER_SCOPED = {
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "StorageClass",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "VolumeAttributesClass",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "FlowSchema",
    "RuntimeClass",
    "CustomResourceDefinition",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "CertificateSigningRequest",
    "ClusterTrustBundle",
    "IngressClass",
    "IPAddress",
    "ServiceCIDR",
    "DeviceClass",
    "ResourceSlice",
    "DeviceTaintRule",
    "StorageVersionMigration",
    "ComponentStatus",
}


@functools.lru_cache(maxsize=1)
def catalog() -> Catalog:
    """The built-in kinds, read from the schemas' `x-kubernetes-group-version-kind`."""
    defs, version = _definitions()
    by_api: dict[str, set[str]] = {}
    for definition in defs["$defs"].values():
        props = definition.get("properties", {})
        if "metadata" not in props or "apiVersion" not in props:
            continue
        for gvk in definition.get("x-kubernetes-group-version-kind", ()):
            if gvk["kind"].endswith("List") and "items" in props:
                continue
            api = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            by_api.setdefault(api, set()).add(gvk["kind"])
    by_kind: dict[str, list[str]] = {}
    for api, kinds in by_api.items():
        for kind in kinds:
            by_kind.setdefault(kind, []).append(api)
    groups = frozenset(api.rpartition("/")[0] for api in by_api)
    namespaced = {(api, kind): kind not in _CLUSTER_SCOPED for api, kinds in by_api.items() for kind in kinds}
    return Catalog(
        version,
        {a: frozenset(k) for a, k in by_api.items()},
        {k: tuple(sorted(v, key=_api_rank)) for k, v in by_kind.items()},
        groups,
        namespaced,
    )


def _api_rank(api: str) -> tuple[int, str]:
    """Stable versions first (v1 before v1beta1 before v1alpha1), as the API server prefers."""
    version = api.rpartition("/")[2]
    return (2 if "alpha" in version else 1 if "beta" in version else 0, api)


@functools.cache
def _validator(api: str, kind: str) -> Any:
    """One jsonschema validator per (apiVersion, kind), sharing the loaded definitions."""
    import jsonschema  # deferred: jsonschema and the schemas load only when a kind needs them
    from referencing import Registry, Resource  # deferred: jsonschema and the schemas load only when a kind needs them

    defs, _ = _definitions()
    folder, _ = _schema_dir()
    group, _, version = api.rpartition("/")
    prefix = f"{group.split('.')[0]}-" if group else ""
    schema = json.loads(folder.joinpath(f"{kind.lower()}-{prefix}{version}.json").read_text(encoding="utf-8"))
    registry = Resource.from_contents(schema) @ (_definitions_resource() @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@functools.lru_cache(maxsize=1)
def _definitions_resource() -> Any:
    from referencing import Resource  # deferred: jsonschema and the schemas load only when a kind needs them

    return Resource.from_contents(_definitions()[0])


def is_builtin_group(api: str) -> bool:
    """Kubernetes has this API group, or it could only be Kubernetes': a CustomResourceDefinition's
    group must contain a dot, so `extensions/v1beta1` (removed) or `apps/v2` is no custom resource."""
    group = api.rpartition("/")[0]
    return group in catalog().groups or "." not in group


def kind_problem(kind: str, api: str, modelled: Iterable[str]) -> str | None:
    """Why (apiVersion, kind) is refused, or None when it is built in or a custom resource.

    `modelled` are the kinds the testbed decodes itself, offered in the "known:" list."""
    cat = catalog()
    if kind in cat.by_api.get(api, ()):
        return None
    if api.rpartition("/")[0] == _NETWORK_POLICY_GROUP:
        # A group the testbed models: its CRDs are known, so a wrong version or kind is an error.
        if kind in NETWORK_POLICY_API:
            return f"{kind} is served as apiVersion {NETWORK_POLICY_API[kind][0]!r}, got {api!r}"
        return f"unknown kind {kind!r} in API group {_NETWORK_POLICY_GROUP} (known: {', '.join(NETWORK_POLICY_API)})"
    if not is_builtin_group(api):
        return None  # a custom resource: its CRD says what it is
    if kind in cat.by_kind:
        served = ", ".join(repr(a) for a in cat.by_kind[kind])
        return f"{kind} is served as apiVersion {served}, got {api!r}"
    every = sorted(set(cat.by_kind) | set(modelled))
    close = difflib.get_close_matches(kind, every, n=1, cutoff=0.75) or difflib.get_close_matches(
        kind.lower(), [k.lower() for k in every], n=1, cutoff=0.75
    )
    hint = ""
    if close:
        match = next(k for k in every if k.lower() == close[0].lower())
        hint = f"; did you mean {match!r}?"
    return (
        f"unknown kind {kind!r}{hint} (known: {', '.join(modelled)}, List, and every other "
        f"built-in kind of Kubernetes {cat.version}, or a custom resource of another API group)"
    )


def is_namespaced(api: str, kind: str) -> bool:
    """Custom resources are taken as namespaced unless they say otherwise (their CRD knows)."""
    return catalog().namespaced.get((api, kind), True)


def validate(doc: Doc, api: str, kind: str) -> None:
    """Report each way `doc` breaks Kubernetes' schema for (api, kind) on the document's cursor:
    field path and a short message, at most MAX_PROBLEMS_PER_OBJECT of them."""
    if kind not in catalog().by_api.get(api, ()):
        return  # a custom resource: only its CRD could check it
    errors = sorted(_validator(api, kind).iter_errors(doc.value), key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors[:MAX_PROBLEMS_PER_OBJECT]:
        node = doc
        for part in error.absolute_path:
            node = node.child(part, None)
        if error.validator == "additionalProperties":
            # One problem per unknown field, at the field itself, as the rest of spec/ says it.
            for key in sorted(set(error.instance) - set(error.schema.get("properties", {})), key=str):
                node.error(f"unknown field {excerpt(key)}", key if isinstance(key, str) else None)
            continue
        node.error(_message(error))
    if len(errors) > MAX_PROBLEMS_PER_OBJECT:
        doc.error(f"and {len(errors) - MAX_PROBLEMS_PER_OBJECT} more schema problems")


def _message(error: Any) -> str:
    """jsonschema's message in the words of the rest of spec/ (bounded by Problem)."""
    if error.validator == "required":
        return str(error.message).replace(" is a required property", ": required field is missing")
    if error.validator == "type":
        wanted = error.validator_value
        wanted = [w for w in wanted if w != "null"] if isinstance(wanted, list) else [wanted]
        return f"expected {' or '.join(wanted)}, got {excerpt(error.instance)}"
    if error.validator == "enum":
        return f"must be one of {', '.join(map(str, error.validator_value))}, got {excerpt(error.instance)}"
    return str(error.message)


def summary(others: Iterable[OtherObject]) -> tuple[list[str], list[str]]:
    """(warnings, notes) for the objects that are not emulated, one line each:
    `11 ServiceAccount, 2 ConfigMap: not emulated, no effect on the network`."""
    others = list(others)
    # (every pod controller is decoded by spec/workloads.py and emulated: none is noted here)
    warnings: list[str] = []
    notes: list[str] = []
    rest = Counter(o.ref.kind for o in others if o.builtin)
    if rest:
        notes.append(f"{_count(rest)}: not emulated, no effect on the network")
    custom = Counter(f"{o.ref.kind} ({o.api_version})" for o in others if not o.builtin)
    if custom:
        notes.append(f"{_count(custom)}: custom resources, not emulated (their controllers do not run here)")
    return warnings, notes


def _count(counter: Counter[str]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))
