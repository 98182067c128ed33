"""Helpers shared by the NetworkPolicy tests (test_netpol_*.py): small worlds.

Their golden files live in golden/netpol/ (checked by _golden.check_golden): every change there
is a change in the rules a node enforces or in what `testbed explain` tells a user.
"""

from __future__ import annotations

import dataclasses
import pathlib
import textwrap

import yaml

from testbed.netpol import NodeInfo, World
from testbed.plan.model import PodPlan, PortPlan
from testbed.spec.decode import Doc, Problems
from testbed.spec.model import ObjectRef
from testbed.spec.netpol import NetworkPolicySpec, decode_policy

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATA = HERE / "data" / "netpol"


def pod_info(
    namespace: str,
    name: str,
    ip: str,
    node: str = "",
    labels: dict[str, str] | None = None,
    ports: tuple[PortPlan, ...] = (),
) -> PodPlan:
    """A planned pod with only what the policy world reads (its sandbox fields left blank)."""
    return PodPlan(
        namespace,
        name,
        uid="",
        node=node,
        ip=ip,
        prefix=24,
        gateway="",
        labels=dict(labels or {}),
        containers=("c",),
        ports=tuple(ports),
        owner="",
        key=f"{namespace}_{name}",
        host_veth="",
    )


def named_port(name: str, port: int, protocol: str = "TCP") -> PortPlan:
    """A declared container port of container `c`."""
    return PortPlan("c", port, protocol, name)


NAMESPACES = {"x": {"ns": "x", "team": "red"}, "y": {"ns": "y", "team": "blue"}, "z": {"ns": "z"}}
NODES = (
    NodeInfo("n0", ("192.168.1.2", "10.244.0.1")),
    NodeInfo("n1", ("192.168.1.3", "10.244.1.1")),
    NodeInfo("n2", ("192.168.1.4", "10.244.2.1")),
)
EXTERNALS = {"laptop": "192.168.1.10"}
SERVE = tuple(named_port(f"serve-{p}-{proto.lower()}", p, proto) for p in (80, 81) for proto in ("TCP", "UDP", "SCTP"))


def xyz_pods() -> list[PodPlan]:
    """x/a, x/b, x/c, y/a, ... on nodes n0..n2 (pod a of x on n0, b on n1, ...), labels pod=<name>."""
    pods = []
    for i, ns in enumerate(NAMESPACES):
        for j, name in enumerate("abc"):
            node = (i + j) % 3
            pods.append(pod_info(ns, name, f"10.244.{node}.{10 + 3 * i + j}", f"n{node}", {"pod": name}, SERVE))
    return pods


def policies(text: str) -> tuple[NetworkPolicySpec, ...]:
    """Decode NetworkPolicy documents (namespace defaults to x); fail loudly on any problem."""
    out = []
    for raw in yaml.safe_load_all(textwrap.dedent(text)):
        if not raw:
            continue
        out.append(decode_raw(raw))
    return tuple(out)


def decode_raw(raw: dict) -> NetworkPolicySpec:
    raw = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", **raw}
    meta = raw.setdefault("metadata", {})
    meta.setdefault("namespace", "x")
    problems = Problems()
    ref = ObjectRef("test.yaml", "NetworkPolicy", meta["namespace"], meta["name"])
    spec = decode_policy(Doc(raw, "test.yaml", problems, document=str(ref)), ref, meta.get("labels", {}), {})
    problems.raise_if_any()
    assert spec is not None
    return spec


def xyz_world(text: str = "", pods=None, namespaces=None) -> World:
    return World.build(
        pods if pods is not None else xyz_pods(),
        namespaces if namespaces is not None else NAMESPACES,
        policies(text) if text else (),
        NODES,
        EXTERNALS,
    )


def load_without_services(paths, tmp_path) -> list[str]:
    """The seed manifests keep their Service in its own document; until Services are decoded
    (testbed/spec/services.py), drop those documents into a temporary copy."""
    try:
        import testbed.spec.services  # noqa: F401

        return [str(p) for p in paths]
    except ModuleNotFoundError:
        pass
    out = []
    for path in paths:
        docs = [d for d in yaml.safe_load_all(pathlib.Path(path).read_text(encoding="utf-8")) if d]
        if not any(d.get("kind") == "Service" for d in docs):
            out.append(str(path))
            continue
        docs = [d for d in docs if d.get("kind") != "Service"]
        copy = tmp_path / pathlib.Path(path).name
        copy.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
        out.append(str(copy))
    return out


def http_named_pods(keep_serve_ports: bool = True) -> list[PodPlan]:
    """xyz_pods whose containers also name TCP port `http`: 80 in x and z, 8080 in y
    (keep_serve_ports=False: `http` is their only port)."""
    return [
        dataclasses.replace(
            p, ports=(p.ports if keep_serve_ports else ()) + (named_port("http", 8080 if p.namespace == "y" else 80),)
        )
        for p in xyz_pods()
    ]


def egress_ports_world(ports: str, pods: list[PodPlan]) -> World:
    """`pods` in x/y/z and one policy `p` of x: every pod of x may send only to `ports` (a YAML list)."""
    return xyz_world(
        f"""
        metadata: {{name: p}}
        spec: {{podSelector: {{}}, policyTypes: [Egress], egress: [{{ports: {ports}}}]}}
    """,
        pods=pods,
    )
