"""The Plan: the cluster's one desired state, everything the emulation will create (output of plan/).

emu/ realises a Plan and nothing else — it never reads manifests: nodes, pods, routes, the
network (racks, VTEPs, BGP), Services with their EndpointSlices, the policy world (namespaces'
labels and NetworkPolicies), the ingress controller's configuration, and, derived from those on
first use (pure, cached), the compiled rulesets of every node: kube-proxy's, the NetworkPolicy
table and the egress masquerade (plan/rulesets.py). `testbed plan` prints one without root. Names of
kernel objects here are *keys* (e.g. the pod netns key `default_web-7c9f-x2b4z`); emu/
prefixes them with the testbed's prefix and an instance tag so that two emulations on one
machine never share an object name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from ..spec.kube_proxy_config import KubeProxyConfig
from ..spec.model import OMIT_AT_DEFAULT
from .conditions import PodConditions
from .jsonvalue import Json, to_json
from .loadbalancers import lb_announcers
from .lookup import find_pod
from .pod import PodPlan as PodPlan  # the planned pod, used everywhere
from .pod import PortPlan as PortPlan
from .service_model import ServicesPlan
from .service_routes import ServiceRoute, service_routes
from .v6first import ipv4_side, primary_cluster_ip

if TYPE_CHECKING:  # plan/network.py and plan/dualstack.py build on this module's RoutePlan
    from .dualstack import DualStackPlan
    from .network import NetworkPlan

# Deferred (imported by the members that use them, and here for type checkers only): the
# derived parts below, the ingress controller and the policy world. `testbed plan` prints a
# Plan without compiling a rule (the compilers, the rules' tracer and renderers are a quarter
# of its start), and a cluster without an Ingress never needs ingress/.
if TYPE_CHECKING:
    from ..ingress.model import IngressConfig
    from ..netpol.model import Policy
    from ..netpol.world import World
    from ..rules.model import Ruleset, Table
    from ..spec.cnp import ClusterPolicySpec


@dataclass(frozen=True)
class NodePlan:
    name: str
    role: str
    index: int
    host_ip: str  # HOST-IP on the underlay (scenario 001)
    underlay_prefix: int
    pod_cidr: str  # 10.244.N.0/24 (scenario 002)
    gateway: str  # first address of pod_cidr, held by cni0
    labels: Mapping[str, str]
    taints: tuple[str, ...]
    key: str  # short name: Mininet host name and netns key
    bridge: str = "cni0"


@dataclass(frozen=True)
class RoutePlan:
    node: str
    dst: str
    via: str | None
    dev: str
    why: str  # e.g. "host-gw: pod CIDR of kind-worker via its HOST-IP"


@dataclass(frozen=True)
class ExternalPlan:
    name: str
    ip: str
    underlay_prefix: int
    key: str
    ports: tuple[PortPlan, ...] = ()  # served by the agent (an outside web server, say)
    outside: bool = False  # in the emulated outside world: pods reach it through SNAT


@dataclass(frozen=True)
class PendingPod:
    """A pod its owner wants that no node can take (kube-scheduler's reason), or whose node's
    pod CIDR is full: listed as Pending, built nowhere."""

    namespace: str
    name: str
    reason: str


@dataclass(frozen=True)
class IngressPlan:
    """The ingress controller's desired configuration (testbed/ingress/ decides it): the nginx
    model and the certificates to make (secretName -> the host names it covers)."""

    config: IngressConfig
    certificates: Mapping[str, tuple[str, ...]]
    ipv6: bool = False  # the controller pod has an IPv6 address: nginx listens on [::] too (issue 15)

    def nginx_conf(self, folder: str) -> str:
        """The nginx.conf text, its certificates, pid file and logs in `folder` (emu/'s choice)."""
        from ..ingress.nginx import render_config  # deferred: see the imports

        return render_config(
            self.config,
            cert_path=f"{folder}/{{secret}}.crt",
            key_path=f"{folder}/{{secret}}.key",
            pid_path=f"{folder}/nginx.pid",
            prefix_dir=folder,
            ipv6=self.ipv6,
        )


# Fields of the desired state that `testbed plan -o json` leaves out: the policy world and
# the ingress configuration come from the manifests the user already has, and keeping the
# JSON as it was keeps every saved plan.json comparable.
NOT_IN_JSON = ("namespaces", "policies", "ingress", "tiers", "conditions")


@dataclass(frozen=True)
class Plan:
    cluster: str
    seed: int
    routing: str
    pod_subnet: str
    service_subnet: str
    underlay_subnet: str
    mtu: int
    nodes: tuple[NodePlan, ...]
    pods: tuple[PodPlan, ...]
    routes: tuple[RoutePlan, ...]
    externals: tuple[ExternalPlan, ...]
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    ipam_next: Mapping[str, int] = field(default_factory=dict)  # per node: next host offset (host-local)
    name_draws: Mapping[str, int] = field(default_factory=dict)  # per name stream: names handed out
    generation: int = 0  # 0 for the first plan, +1 at each change (scale, delete, rollout...)
    # racks, routers, VTEPs, BGP speakers; None (and left out of to_dict) for one L2 segment
    # routed host-gw
    network: NetworkPlan | None = None
    services: ServicesPlan | None = None  # Services, their addresses, EndpointSlices
    kube_proxy_mode: str = "iptables"
    system: bool = True  # the cluster's own objects (CoreDNS, kube-dns) are planned too
    pending: tuple[PendingPod, ...] = ()  # pods no node took, with the scheduler's reason
    # the policy world: the declared namespaces' labels (the implicit ones and the
    # kubernetes.io/metadata.name label are added by netpol.World) and the NetworkPolicies
    namespaces: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    policies: tuple[Policy, ...] = ()
    ingress: IngressPlan | None = None  # None: no ingress controller pod
    # the administrator's tiers (issue 17): ClusterNetworkPolicy, AdminNetworkPolicy and
    # BaselineAdminNetworkPolicy objects, in the policy world beside the NetworkPolicies
    tiers: tuple[ClusterPolicySpec, ...] = ()
    # pods' lifecycle (issue 19): not Ready, terminating, exited, and each node's kube-proxy
    # view while a change travels (plan/conditions.py); None: every pod Ready, every node synced
    conditions: PodConditions | None = None
    # the topology's KubeProxyConfiguration (issue 19 item 4); None: the testbed's defaults
    kube_proxy: KubeProxyConfig | None = field(default=None, metadata={OMIT_AT_DEFAULT: True})
    # TestbedConfig advertiseServiceSubnet: the Service range routed from outside (plan/service_routes.py)
    advertise_service_subnet: bool = field(default=False, metadata={OMIT_AT_DEFAULT: True})
    # the IPv6 half of a dual-stack cluster (issue 15, plan/dualstack.py); None (and left out of
    # to_dict) for an IPv4 cluster
    dual: DualStackPlan | None = None

    # -- derived parts of the desired state (pure, computed on first use) -------------------
    @cached_property
    def world(self) -> World:
        """What the policy oracle and compiler see: pods, nodes, namespaces, policies."""
        from ..netpol.world import World  # deferred: see the imports

        return World.from_plan(self)

    @cached_property
    def dns_records(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The cluster DNS's (A records, CNAMEs): Services and pods (plan/dns.py); a dual-stack
        cluster's AAAA records follow its A records (plan/dns6.py)."""
        from .dns import records  # deferred: see the imports
        from .dns6 import aaaa_records

        a, cnames = records(ipv4_side(self.services, self.dual) if self.services else None, self.pods)
        return a + aaaa_records(self.dual, self.services, self.pods), cnames

    @cached_property
    def dns_server(self) -> str | None:
        """kube-dns's ClusterIP, every pod's nameserver."""
        return next(
            (
                primary_cluster_ip(self, s)  # an IPv6-first cluster's: IPv6 (plan/v6first.py)
                for s in (self.services.services if self.services is not None else ())
                if (s.namespace, s.name) == ("kube-system", "kube-dns")
            ),
            None,
        )

    @cached_property
    def lb_announcers(self) -> Mapping[str, str]:
        """LoadBalancer ingress IP -> the node that holds it (plan/loadbalancers.py)."""
        return lb_announcers(self.services, self.nodes)

    @cached_property
    def service_routes(self) -> tuple[ServiceRoute, ...]:
        """External hosts' and the router's routes to externalIPs and an advertised Service range."""
        return service_routes(self)

    @cached_property
    def outside_subnets(self) -> tuple[str, ...]:
        """The emulated outside world's subnets, which pods reach through the egress masquerade."""
        return tuple(s.cidr for s in (self.network.subnets if self.network is not None else ()) if s.outside)

    @cached_property
    def kube_proxy_rulesets(self) -> Mapping[str, Ruleset]:
        """node -> kube-proxy's rules (empty without Services or with kube-proxy mode none)."""
        from .rulesets import kube_proxy_rulesets  # deferred: see the imports

        return kube_proxy_rulesets(self)

    @cached_property
    def policy_rulesets(self) -> Mapping[str, Ruleset]:
        """node -> the NetworkPolicy table (a table without rules when no policy exists)."""
        from .rulesets import policy_rulesets  # deferred: see the imports

        return policy_rulesets(self)

    @cached_property
    def egress_tables(self) -> Mapping[str, Table]:
        """node -> the egress masquerade (empty without an outside subnet)."""
        from .rulesets import egress_tables  # deferred: see the imports

        return egress_tables(self)

    @cached_property
    def hostport_tables(self) -> Mapping[str, Table]:
        """node -> the portmap CNI plugin's hostPort table (only nodes with hostPort pods)."""
        from .rulesets import hostport_tables  # deferred: see the imports

        return hostport_tables(self)

    @cached_property
    def rulesets(self) -> Mapping[str, Ruleset]:
        """node -> every table it holds, as emu/ loads them (the tracer's input)."""
        from .rulesets import merged_rulesets  # deferred: see the imports

        return merged_rulesets(self)

    def node(self, name: str) -> NodePlan:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def pods_on(self, node: str) -> tuple[PodPlan, ...]:
        return tuple(p for p in self.pods if p.node == node)

    def find_pod(self, name: str, namespace: str | None = None) -> PodPlan | None:
        """A pod by name, or `ns/name`; namespace None means: unique across namespaces."""
        return find_pod(self.pods, name if namespace is None else f"{namespace}/{name}")

    def to_dict(self) -> dict[str, Json]:
        """The plan as JSON, as `testbed plan -o json` prints it (no network for one L2 segment;
        the fields NOT_IN_JSON left out)."""
        return {
            f: to_json(getattr(self, f))
            for f in self.__dataclass_fields__
            if f not in NOT_IN_JSON
            and not (f == "network" and self.network is None)
            and not (f == "kube_proxy" and self.kube_proxy is None)
            and not (f == "advertise_service_subnet" and not self.advertise_service_subnet)
            and not (f == "dual" and self.dual is None)
        }
