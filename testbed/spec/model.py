"""Frozen dataclasses for everything a user declares: the cluster and the workloads.

Output of spec/ (topology.py, workloads.py), input of plan/. Nothing here touches the
kernel; these objects are plain data, compared and hashed for deterministic plans.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .affinity import Affinity, TopologySpreadConstraint
from .kube_proxy_config import KubeProxyConfig
from .lifecycle import PodLifecycle
from .selectors import LabelSelector

PROTOCOLS = ("TCP", "UDP", "SCTP")
ROUTING_MODES = ("host-gw", "cloud-routes", "vxlan", "bgp")  # each is planned in plan/routing.py
BGP_TOPOLOGIES = ("full-mesh", "route-reflector", "top-of-rack")
KUBE_PROXY_MODES = ("iptables", "nftables", "none")
# dataclasses.field metadata: a field added later, left out at its default value of the
# pod-template-hash (plan/naming.py) and of plan JSON (plan/jsonvalue.py), so that what does not
# use it keeps its pod names and its plan.json
OMIT_AT_DEFAULT = "omit_at_default"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str = ""
    effect: str = "NoSchedule"


@dataclass(frozen=True)
class Toleration:
    key: str = ""  # empty key with operator Exists tolerates everything
    operator: str = "Equal"  # Equal | Exists
    value: str = ""
    effect: str = ""  # empty: every effect
    # tolerationSeconds (NoExecute only): how long the pod stays once the taint is there
    seconds: int | None = field(default=None, metadata={OMIT_AT_DEFAULT: True})

    def tolerates(self, taint: Taint) -> bool:
        """core/v1 Toleration semantics (k8s.io/api/core/v1 ToleratesTaint)."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.value == taint.value


@dataclass(frozen=True)
class NodeSpec:
    name: str
    role: str  # "control-plane" | "worker"
    labels: Mapping[str, str]
    taints: tuple[Taint, ...] = ()
    pod_cidr: str | None = None  # an explicit override from the testbed document
    rack: str = ""  # underlay subnet (rack) name; "" = the first subnet


@dataclass(frozen=True)
class ExternalHost:
    """A host outside the cluster on the underlay, e.g. scenario 002's laptop at 192.168.1.10."""

    name: str
    ip: str | None = None
    rack: str = ""  # "" = the subnet holding `ip`, else the first subnet
    ports: tuple[ContainerPort, ...] = ()  # served by the agent, e.g. an outside web server


@dataclass(frozen=True)
class UnderlaySubnet:
    """One L2 segment of the underlay (a rack); several are joined by the underlay router."""

    name: str
    cidr: str
    first_host: int = 2  # nodes from .2; the router takes .1 (the rack's gateway)
    outside: bool = False  # the emulated outside world (no nodes): pods reach it through SNAT
    # dual-stack: the rack's IPv6 segment; "" = its twin (spec/underlay6.py)
    cidr_v6: str = field(default="", metadata={OMIT_AT_DEFAULT: True})


@dataclass(frozen=True)
class BgpOptions:
    """Calico-like BGP between nodes (routing: bgp); bird2 on every node."""

    as_number: int = 64512  # Calico's default AS
    topology: str = "full-mesh"  # full-mesh | route-reflector | top-of-rack
    route_reflectors: tuple[str, ...] = ()  # route-reflector: node names (default: control-plane nodes)
    hold_time: int = 30  # seconds without a message before a peer's routes are withdrawn (keepalive: 1/3)


@dataclass(frozen=True)
class VxlanOptions:
    """flannel's vxlan backend: flannel.1, VNI 1, UDP 8472, MTU = underlay MTU - 50."""

    vni: int = 1
    port: int = 8472


@dataclass(frozen=True)
class ClusterSpec:
    """A kind Cluster config plus the testbed document (what kind does not say)."""

    name: str
    file: str
    nodes: tuple[NodeSpec, ...]
    pod_subnet: str = "10.244.0.0/16"
    service_subnet: str = "10.96.0.0/16"  # kind's default (kubeadm's is /12)
    kube_proxy_mode: str = "iptables"
    underlay_subnet: str = "192.168.1.0/24"
    first_node_host: int = 2  # nodes from .2, as in scenario 002
    node_cidr_prefix: int = 24
    routing: str = "host-gw"
    mtu: int = 1500
    allow_overlapping_pod_cidrs: bool = False
    external_hosts: tuple[ExternalHost, ...] = ()
    notes: tuple[str, ...] = ()  # kind fields accepted but not applicable here
    # Several subnets (racks) joined by a router; () = one subnet, underlay_subnet. When set,
    # underlay_subnet and first_node_host are the first subnet's.
    underlay_subnets: tuple[UnderlaySubnet, ...] = ()
    bgp: BgpOptions = BgpOptions()
    vxlan: VxlanOptions = VxlanOptions()
    # kind's kubeadm patch of kind KubeProxyConfiguration (spec/kube_proxy_config.py); None: none
    kube_proxy: KubeProxyConfig | None = field(default=None, metadata={OMIT_AT_DEFAULT: True})
    # TestbedConfig advertiseServiceSubnet: outside hosts route the Service range to a node
    advertise_service_subnet: bool = field(default=False, metadata={OMIT_AT_DEFAULT: True})
    # kind's networking.ipFamily (issue 15): with "dual", pod_subnet and service_subnet above are
    # the IPv4 (primary) half and these the IPv6 half (spec/dualstack.py); unused for "ipv4".
    ip_family: str = "ipv4"
    pod_subnet_v6: str = ""
    service_subnet_v6: str = ""
    underlay_subnet_v6: str = "fd00:192:168:1::/64"
    node_cidr_prefix_v6: int = 64
    # dual with the IPv6 CIDRs first: the API objects' primary family (spec/v6first.py)
    primary_family: str = field(default="IPv4", metadata={OMIT_AT_DEFAULT: True})

    def subnets(self) -> tuple[UnderlaySubnet, ...]:
        """Every underlay subnet, the single-subnet default included (named "underlay")."""
        return self.underlay_subnets or (UnderlaySubnet("underlay", self.underlay_subnet, self.first_node_host),)

    def rack_of(self, node: NodeSpec) -> str:
        return node.rack or self.subnets()[0].name

    def needs_router(self) -> bool:
        """An underlay router exists between racks, as the cloud's gateway (cloud-routes), or as
        the top-of-rack BGP peer; one L2 segment with host-gw, vxlan or a BGP mesh needs none."""
        return (
            len(self.subnets()) > 1
            or self.routing == "cloud-routes"
            or (self.routing == "bgp" and self.bgp.topology == "top-of-rack")
        )


@dataclass(frozen=True)
class ContainerPort:
    container_port: int
    protocol: str = "TCP"
    name: str = ""
    host_port: int = field(default=0, metadata={OMIT_AT_DEFAULT: True})  # 0: none (portmap CNI plugin's DNAT when set)
    host_ip: str = field(default="", metadata={OMIT_AT_DEFAULT: True})  # "": every address of the node


@dataclass(frozen=True)
class DnsConfig:
    """A pod's spec.dnsConfig, merged by the kubelet into the base its dnsPolicy gives."""

    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[tuple[str, str | None], ...] = ()  # (name, value or None)


@dataclass(frozen=True)
class HostAlias:
    """One spec.hostAliases entry: an /etc/hosts line the kubelet appends."""

    ip: str
    hostnames: tuple[str, ...]


@dataclass(frozen=True)
class Container:
    name: str
    ports: tuple[ContainerPort, ...] = ()


@dataclass(frozen=True)
class PodTemplate:
    """metadata.labels plus the networking-relevant parts of a PodSpec."""

    labels: Mapping[str, str]
    containers: tuple[Container, ...]
    node_name: str = ""
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    # spec.affinity and spec.topologySpreadConstraints (spec/affinity.py), for plan/scheduling/
    affinity: Affinity | None = field(default=None, metadata={OMIT_AT_DEFAULT: True})
    topology_spread: tuple[TopologySpreadConstraint, ...] = field(default=(), metadata={OMIT_AT_DEFAULT: True})
    # spec.hostname / spec.subdomain: the pod's UTS hostname, and with a headless Service named
    # `subdomain` in its namespace the DNS name <hostname>.<subdomain>.<ns>.svc (plan/dns.py)
    # (left out of the pod-template-hash at their default: OMIT_AT_DEFAULT)
    hostname: str = field(default="", metadata={OMIT_AT_DEFAULT: True})
    subdomain: str = field(default="", metadata={OMIT_AT_DEFAULT: True})
    lifecycle: PodLifecycle = field(
        default=PodLifecycle(), metadata={OMIT_AT_DEFAULT: True}
    )  # probes, preStop, grace, gates (issue 19)
    # Pod networking (spec/podnet.py decodes them; plan/podnet.py plans them)
    host_network: bool = field(default=False, metadata={OMIT_AT_DEFAULT: True})
    dns_policy: str = field(default="ClusterFirst", metadata={OMIT_AT_DEFAULT: True})
    dns_config: DnsConfig | None = field(default=None, metadata={OMIT_AT_DEFAULT: True})
    host_aliases: tuple[HostAlias, ...] = field(default=(), metadata={OMIT_AT_DEFAULT: True})


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class ObjectRef:
    """Where an object came from, for messages: file and `Kind ns/name`."""

    file: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


class Named:
    """namespace, name and `ns/name` of an object that has a `ref: ObjectRef` (a mixin)."""

    ref: ObjectRef

    @property
    def namespace(self) -> str:
        return self.ref.namespace

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def key(self) -> str:
        return f"{self.ref.namespace}/{self.ref.name}"


@dataclass(frozen=True)
class PodSpec:
    """A standalone Pod object."""

    ref: ObjectRef
    template: PodTemplate


@dataclass(frozen=True)
class Workload:
    """A pod controller: Deployment, ReplicaSet, ReplicationController, StatefulSet, DaemonSet,
    Job or CronJob (spec/controllers.py decodes the last four's own fields; plan/controllers.py
    turns them into pods)."""

    ref: ObjectRef
    replicas: int  # a DaemonSet's pods follow the nodes (0 here); a Job's: the pods running at once
    selector: LabelSelector
    template: PodTemplate
    controller: ControllerFields | None = None  # StatefulSet, DaemonSet, Job and CronJob only
    min_ready_seconds: int = 0  # spec.minReadySeconds: Ready this long before it counts as available


@dataclass(frozen=True)
class ControllerFields:
    """What StatefulSets, Jobs and CronJobs say beyond replicas, selector and template."""

    service_name: str = ""  # StatefulSet: the headless Service giving each pod its DNS name
    pod_management: str = "OrderedReady"  # StatefulSet: OrderedReady | Parallel
    completions: int | None = None  # Job (and a CronJob's job template)
    parallelism: int = 1
    active_deadline: int | None = None  # Job: activeDeadlineSeconds (shown, not timed)
    schedule: str = ""  # CronJob
    suspend: bool = False  # CronJob
    complete: bool = False  # Job: its pods ran and succeeded (experiment/jobs.py)
    owner: str = ""  # Job: "CronJob/<name>" when a CronJob was triggered into it
    # StatefulSet, DaemonSet: updateStrategy (plan/updates.py plays a RollingUpdate)
    update_strategy: str = "RollingUpdate"  # RollingUpdate | OnDelete
    partition: int = 0  # StatefulSet: ordinals below it keep their revision
    max_unavailable: str = "1"  # an int or a percentage, as the API takes it
    max_surge: str = "0"  # DaemonSet
    indexed: bool = False  # Job: completionMode Indexed


@dataclass(frozen=True)
class Manifests:
    """Everything a `kubectl apply -f` of the workload files would create."""

    namespaces: tuple[Namespace, ...] = ()
    pods: tuple[PodSpec, ...] = ()
    workloads: tuple[Workload, ...] = ()
    files: tuple[str, ...] = ()
    # Decoded by the extension modules registered in workloads.EXTENSIONS
    # (spec/services.py -> ServiceSpec, spec/netpol.py -> NetworkPolicySpec, ...).
    services: tuple[Any, ...] = ()
    policies: tuple[Any, ...] = ()
    ingresses: tuple[Any, ...] = ()
    # ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy (spec/cnp.py).
    cluster_policies: tuple[Any, ...] = ()
    # Objects of every other kind (spec/kinds.py OtherObject): validated, not emulated, noted.
    others: tuple[Any, ...] = ()

    def namespace_names(self) -> set[str]:
        return {"default", "kube-system", "kube-public", "kube-node-lease"} | {n.name for n in self.namespaces}
