"""What the oracle and the compiler know about the cluster: pods, namespaces, nodes, policies.

A `World` is built from a Plan's policy world (`World.from_plan`, or `plan.world`) or directly in tests
(`World.build`). Every namespace carries `kubernetes.io/metadata.name=<name>`, as the API
server adds it; the implicit namespaces (default, kube-system, kube-public, kube-node-lease)
exist even when the manifests do not declare them. Changes mid-experiment (relabel a pod or a
namespace, add or remove pods or policies) are new Worlds (`with_*`), never mutations.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from ..errors import TestbedError
from ..plan.lookup import find_pod, matching_pods
from ..spec.cnp import ClusterPolicySpec
from ..spec.model import Namespace
from ..spec.netpol import NetworkPolicySpec
from .model import Policy, policies_from
from .tiers import tiers_in_order

if TYPE_CHECKING:  # the Plan holds its World (plan.world); its pods are the Plan's own
    from ..plan.model import Plan, PodPlan

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
IMPLICIT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class UnknownEndpoint(TestbedError):
    """A flow names a pod, node or host the cluster does not have."""

    exit_code = 2


@dataclass(frozen=True)
class NodeInfo:
    name: str
    ips: tuple[str, ...]  # every address the node itself owns: HOST-IP, cni0's gateway...


@dataclass(frozen=True)
class Endpoint:
    """One end of a flow, as the dataplane sees it: an address, and what owns it."""

    ip: str
    pod: PodPlan | None = None
    node: str = ""  # the node that owns this address (its HOST-IP or gateway), if any
    host: str = ""  # the external host that owns it, if any

    def label(self) -> str:
        if self.pod is not None:
            return f"pod {self.pod.full_name} ({self.ip})"
        if self.node:
            return f"node {self.node} ({self.ip})"
        if self.host:
            return f"external host {self.host} ({self.ip})"
        return f"{self.ip} (outside the cluster)"


def namespace_labels(name: str, labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """The labels the API server stores: the user's plus kubernetes.io/metadata.name."""
    return {**(labels or {}), NAMESPACE_NAME_LABEL: name}


@dataclass(frozen=True)
class World:
    pods: tuple[PodPlan, ...]
    namespaces: Mapping[str, Mapping[str, str]]  # name -> labels (metadata.name label included)
    policies: tuple[Policy, ...]  # sorted by namespace/name
    nodes: tuple[NodeInfo, ...] = ()
    externals: Mapping[str, str] = field(default_factory=dict)  # host name -> IP
    # The cluster administrator's tiers (issue 17, netpol/tiers.py): decoded ClusterNetworkPolicy,
    # AdminNetworkPolicy and BaselineAdminNetworkPolicy objects in evaluation order, and the
    # node labels their `nodes` peers select.
    tiers: tuple[ClusterPolicySpec, ...] = ()
    node_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # the address family of every IP here: 6 for the IPv6 view of a dual-stack cluster (issue 15,
    # plan/dualstack.py), whose ipBlocks then contribute their IPv6 prefixes
    ip_version: int = 4

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        pods: Iterable[PodPlan] = (),
        namespaces: Iterable[Namespace] | Mapping[str, Mapping[str, str]] = (),
        policies: Iterable[NetworkPolicySpec | Policy] = (),
        nodes: Iterable[NodeInfo] = (),
        externals: Mapping[str, str] | None = None,
        tiers: Iterable[ClusterPolicySpec] = (),
        node_labels: Mapping[str, Mapping[str, str]] | None = None,
    ) -> World:
        pods = tuple(pods)
        given: dict[str, Mapping[str, str]] = {}
        if isinstance(namespaces, Mapping):
            given = dict(namespaces)
        else:
            given = {n.name: n.labels for n in namespaces}
        names = set(IMPLICIT_NAMESPACES) | set(given) | {p.namespace for p in pods}
        nodes = tuple(nodes)
        node_names = {n.name for n in nodes}
        # a pod on a node we were not told about: the node exists, its addresses unknown
        nodes += tuple(NodeInfo(n, ()) for n in sorted({p.node for p in pods if p.node} - node_names))
        return cls(
            pods=pods,
            namespaces={n: namespace_labels(n, given.get(n)) for n in sorted(names)},
            policies=policies_from(policies),
            nodes=nodes,
            externals=dict(externals or {}),
            tiers=tiers_in_order(tiers),
            node_labels=dict(node_labels or {}),
        )

    @classmethod
    def from_plan(cls, plan: Plan) -> World:
        """From a Plan: its pods, nodes and external hosts, and its policy world."""
        nodes = [NodeInfo(n.name, tuple(dict.fromkeys((n.host_ip, n.gateway)))) for n in plan.nodes]
        # hostNetwork pods are left out, as CNIs treat them: they have no address of their own,
        # a podSelector does not select them and their traffic is their node's (plan/podnet.py).
        world = cls.build(
            plan.pods
            if not any(p.host_network for p in plan.pods)
            else tuple(p for p in plan.pods if not p.host_network),
            plan.namespaces,
            plan.policies,
            nodes,
            {x.name: x.ip for x in plan.externals},
            tiers=plan.tiers,
            node_labels={n.name: dict(n.labels) for n in plan.nodes},
        )
        # a single-stack IPv6 cluster (spec/ipv6.py): ipBlocks give their IPv6 prefixes
        return dataclasses.replace(world, ip_version=6) if ":" in plan.pod_subnet else world

    # -- changes (new worlds) ----------------------------------------------------------------
    def with_pod_labels(self, ref: str, labels: Mapping[str, str]) -> World:
        pod = self.pod(ref)
        return dataclasses.replace(
            self, pods=tuple(dataclasses.replace(p, labels=dict(labels)) if p is pod else p for p in self.pods)
        )

    def with_namespace_labels(self, name: str, labels: Mapping[str, str]) -> World:
        return dataclasses.replace(self, namespaces={**self.namespaces, name: namespace_labels(name, labels)})

    def with_pods(self, pods: Iterable[PodPlan]) -> World:
        return dataclasses.replace(self, pods=tuple(pods))

    def with_policies(self, policies: Iterable[NetworkPolicySpec | Policy]) -> World:
        return dataclasses.replace(self, policies=policies_from(policies))

    def with_tiers(self, tiers: Iterable[ClusterPolicySpec]) -> World:
        return dataclasses.replace(self, tiers=tiers_in_order(tiers))

    # -- lookups ---------------------------------------------------------------------------
    def namespace_labels(self, name: str) -> Mapping[str, str]:
        return self.namespaces.get(name) or namespace_labels(name)

    @cached_property
    def _pods_by_ip(self) -> dict[str, PodPlan]:
        return {p.ip: p for p in self.pods}

    @cached_property
    def _nodes_by_ip(self) -> dict[str, str]:
        return {ip: n.name for n in self.nodes for ip in n.ips}

    @cached_property
    def _hosts_by_ip(self) -> dict[str, str]:
        return {ip: name for name, ip in self.externals.items()}

    def node_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    def pods_on(self, node: str) -> tuple[PodPlan, ...]:
        return tuple(p for p in self.pods if p.node == node)

    def find_pod(self, ref: str) -> PodPlan | None:
        """A pod by `namespace/name`, or by a name unique across namespaces; None otherwise
        (the Plan's lookup, plan.model.find_pod)."""
        return find_pod(self.pods, ref)

    def pod(self, ref: str) -> PodPlan:
        """find_pod for a user's reference: the pod, or UnknownEndpoint saying why not."""
        pod = self.find_pod(ref)
        if pod is not None:
            return pod
        hits = matching_pods(self.pods, ref)
        if not hits:
            raise UnknownEndpoint(f"no pod {ref!r}")
        raise UnknownEndpoint(
            f"pod name {ref!r} is ambiguous: " + ", ".join(p.full_name for p in hits) + " (write namespace/name)"
        )

    def endpoint_of_ip(self, ip: str) -> Endpoint:
        ip = str(ipaddress.ip_address(ip))
        return Endpoint(ip, self._pods_by_ip.get(ip), self._nodes_by_ip.get(ip, ""), self._hosts_by_ip.get(ip, ""))

    def endpoint(self, ref: str) -> Endpoint:
        """A pod (ns/name or unique name), a node or external host by name, or any IP address."""
        try:
            return self.endpoint_of_ip(ref)
        except ValueError:
            pass
        if "/" in ref:
            pod = self.pod(ref)
            return Endpoint(pod.ip, pod)
        hits = [p for p in self.pods if p.name == ref]
        if len(hits) == 1:
            return Endpoint(hits[0].ip, hits[0])
        if len(hits) > 1:
            self.pod(ref)  # raises the ambiguity message
        for node in self.nodes:
            if node.name == ref:
                if not node.ips:
                    raise UnknownEndpoint(f"node {ref!r} has no known address")
                return Endpoint(node.ips[0], None, node.name)
        if ref in self.externals:
            return self.endpoint_of_ip(self.externals[ref])
        raise UnknownEndpoint(f"no pod, node or external host called {ref!r}, and not an IP address")
