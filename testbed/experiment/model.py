"""Experiment files: what to build, which probes to send, what to expect (pure).

An experiment (testbed/v1alpha1, kind Experiment) names a topology and manifests
(paths relative to the experiment file), a seed, and steps; each step sends groups of
probes. A group says from where (pods, nodes or external hosts), to where (pods, or the
other containers of the same pod over localhost), which ports and protocols, how often,
and what is expected: an outcome, and that the server saw the sender's own address.
Loaded by experiment/load.py, expanded into concrete probes by experiment/expand.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..faults.model import Timers
from ..lifecycle.delays import Delays
from ..spec.selectors import LabelSelector

if TYPE_CHECKING:  # changes.py imports this module: the union of actions is named for types only
    from .changes import Action

OUTCOMES = (
    "connected",
    "refused",
    "timeout",
    "unreachable",
    "blocked",
    "oracle",
    "any",
    "http-301",
    "http-308",
    "http-404",
    "http-503",
)


@dataclass(frozen=True)
class PodSelection:
    """Pods by namespace, names and/or labels; all fields empty selects every pod."""

    namespace: str | None = None
    names: tuple[str, ...] = ()
    selector: LabelSelector = field(default_factory=LabelSelector)


@dataclass(frozen=True)
class Endpoints:
    """One side of a probe group: exactly one of pods, nodes, hosts, localhost."""

    pods: PodSelection | None = None
    nodes: tuple[str, ...] | None = None  # () means every node
    hosts: tuple[str, ...] | None = None  # () means every external host
    localhost: bool = False  # destination only: the same pod's other containers
    service: ServiceTarget | None = None  # destination only: a Service
    host_port: PodSelection | None = None  # destination only: pods at their hostPorts (experiment/hostports.py)


@dataclass(frozen=True)
class ServiceTarget:
    """A Service as the destination: by ClusterIP, NodePort, LoadBalancer IP or DNS name."""

    name: str
    namespace: str = "default"
    via: str = "clusterIP"  # clusterIP | nodePort | loadBalancer | externalIP | dns
    nodes: tuple[str, ...] = ()  # nodePort: which nodes' HOST-IPs (() = every node)
    # via dns to a headless Service: the one pod named <hostname>.<service>.<ns>.svc.cluster.local
    # (a StatefulSet's pod: its name), connected to directly as that DNS answer says
    hostname: str = ""


@dataclass(frozen=True)
class Expectation:
    outcome: str = "connected"  # "blocked": timeout or refused; "oracle": as NetworkPolicy predicts; "any"
    source_ip: str = "sender"  # "sender": the server sees the sender's own IP; "node": a node's (SNAT); "any"


@dataclass(frozen=True)
class ProbeGroup:
    name: str
    source: Endpoints
    target: Endpoints
    ports: tuple[int | str, ...] = ()  # numbers or port names; () = every declared port
    protocols: tuple[str, ...] = ()  # () = each port's declared protocol
    repeat: int = 1
    timeout: float = 1.0
    expect: Expectation = field(default_factory=Expectation)
    method: str = "socket"  # socket (fast prober) | scapy (crafted packets) | iperf3
    source_ip: str | None = None  # scapy only: send from this address (e.g. ipBlock cases)
    seconds: float = 1.0  # iperf3 only: length of each measurement
    http: HttpRequest | None = None  # send an HTTP request (ingress probes) instead of a bare probe
    family: str = ""  # IPv4 | IPv6 (over a dual-stack cluster's IPv6 addresses: experiment/family.py);
    # "" = the cluster's primary family, as a pod's podIP (podIPs[0]), or a given sourceIP's (default_family)


@dataclass(frozen=True)
class HttpRequest:
    host: str
    path: str = "/"
    scheme: str = "http"


@dataclass(frozen=True)
class CaptureSpec:
    """tcpdump in a pod's, node's or host's namespace during a step's probes."""

    at: str  # pod (ns/name or name), node or external host name
    interface: str = "eth0"
    filter: str = ""
    max_packets: int = 10000


@dataclass(frozen=True)
class Step:
    name: str
    probes: tuple[ProbeGroup, ...]
    actions: tuple[Action, ...] = ()  # applied before the probes
    captures: tuple[CaptureSpec, ...] = ()
    during: During | None = None  # probes sent continuously while the actions apply


@dataclass(frozen=True)
class During:
    """Rounds of probes every `interval` seconds from the first action to `settle` s after the last."""

    probes: tuple[ProbeGroup, ...]
    interval: float = 0.1
    settle: float = 0.5


@dataclass(frozen=True)
class Experiment:
    name: str
    file: str
    topology: str
    manifests: tuple[str, ...]
    seed: int
    steps: tuple[Step, ...]
    description: str = ""
    timers: Timers = field(default_factory=Timers)  # Kubernetes' timers for faults (faults/model.py)
    # pods' lifecycle played in time (issue 19): changes travel with these delays; None: changes
    # apply at once, in Kubernetes' graceful order
    lifecycle: Delays | None = None
