"""The cluster's own objects, as kind's kubeadm creates them: CoreDNS and the kube-dns Service.

Part of plan/ (pure). Added to the user's manifests before planning: a `coredns`
Deployment in kube-system (2 replicas, k8s-app=kube-dns, tolerating the control-plane taint,
ports dns 53/UDP, dns-tcp 53/TCP, metrics 9153/TCP) and the kube-dns Service at the tenth
address of serviceSubnet. The pods are real pods with real IPs; their port 53 is served by
dnsmasq (emu/dns.py) instead of the agent, which the annotation below tells emu.
"""

from __future__ import annotations

import dataclasses

from ..spec.model import (ClusterSpec, Container, ContainerPort, Manifests, ObjectRef, PodTemplate, Toleration,
                          Workload)
from ..spec.selectors import LabelSelector
from ..spec.services import ServicePort, ServiceSpec
from .services import kube_dns_ip

SERVED_BY = "testbed.io/served-by"   # annotation: which program serves the pod's ports
DNS_LABELS = {"k8s-app": "kube-dns"}
SYSTEM_FILE = "<cluster>"


def coredns() -> Workload:
    template = PodTemplate(
        labels=dict(DNS_LABELS),
        containers=(Container("coredns", (ContainerPort(53, "UDP", "dns"), ContainerPort(53, "TCP", "dns-tcp"),
                                          ContainerPort(9153, "TCP", "metrics"))),),
        tolerations=(Toleration("node-role.kubernetes.io/control-plane", "Exists", "", "NoSchedule"),
                     Toleration("CriticalAddonsOnly", "Exists")),
        annotations={SERVED_BY: "dnsmasq"})
    return Workload(ObjectRef(SYSTEM_FILE, "Deployment", "kube-system", "coredns"), 2,
                    LabelSelector.of(DNS_LABELS), template)


def kube_dns(cluster: ClusterSpec) -> ServiceSpec:
    return ServiceSpec(ref=ObjectRef(SYSTEM_FILE, "Service", "kube-system", "kube-dns"),
                       ports=(ServicePort("dns", 53, "UDP", 53), ServicePort("dns-tcp", 53, "TCP", 53),
                              ServicePort("metrics", 9153, "TCP", 9153)),
                       selector=dict(DNS_LABELS), cluster_ip=kube_dns_ip(cluster),
                       labels={"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"})


def with_system(cluster: ClusterSpec, manifests: Manifests) -> Manifests:
    """The user's manifests plus the cluster's own objects (unless the user brought their own).

    CoreDNS goes last, so that adding it never moves the user's pods to other nodes or IPs.
    """
    workloads = manifests.workloads
    if not any((w.ref.namespace, w.ref.name) == ("kube-system", "coredns") for w in workloads):
        workloads = workloads + (coredns(),)
    services = manifests.services
    if not any((s.namespace, s.name) == ("kube-system", "kube-dns") for s in services):
        services = (kube_dns(cluster),) + services
    return dataclasses.replace(manifests, workloads=workloads, services=services)
