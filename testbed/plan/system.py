"""The cluster's own objects, as kind's kubeadm creates them: CoreDNS and the kube-dns Service.

Part of plan/ (pure). Added to the user's manifests before planning: a `coredns`
Deployment in kube-system (2 replicas, k8s-app=kube-dns, tolerating the control-plane taint,
ports dns 53/UDP, dns-tcp 53/TCP, metrics 9153/TCP) and the kube-dns Service at the tenth
address of serviceSubnet. The pods are real pods with real IPs; their port 53 is served by
dnsmasq (emu/dns.py) instead of the agent, which the annotation below tells emu.
"""

from __future__ import annotations

import dataclasses

from ..spec.model import (
    ClusterSpec,
    Container,
    ContainerPort,
    Manifests,
    Namespace,
    ObjectRef,
    PodTemplate,
    Toleration,
    Workload,
)
from ..spec.selectors import LabelSelector
from ..spec.services import ServicePort, ServiceSpec
from .services import kube_dns_ip

SERVED_BY = "testbed.io/served-by"  # annotation: which program serves the pod's ports
DNS_LABELS = {"k8s-app": "kube-dns"}
SYSTEM_FILE = "<cluster>"


def coredns() -> Workload:
    template = PodTemplate(
        labels=dict(DNS_LABELS),
        containers=(
            Container(
                "coredns",
                (
                    ContainerPort(53, "UDP", "dns"),
                    ContainerPort(53, "TCP", "dns-tcp"),
                    ContainerPort(9153, "TCP", "metrics"),
                ),
            ),
        ),
        tolerations=(
            Toleration("node-role.kubernetes.io/control-plane", "Exists", "", "NoSchedule"),
            Toleration("CriticalAddonsOnly", "Exists"),
        ),
        annotations={SERVED_BY: "dnsmasq"},
    )
    return Workload(
        ObjectRef(SYSTEM_FILE, "Deployment", "kube-system", "coredns"), 2, LabelSelector.of(DNS_LABELS), template
    )


def kube_dns(cluster: ClusterSpec) -> ServiceSpec:
    return ServiceSpec(
        ref=ObjectRef(SYSTEM_FILE, "Service", "kube-system", "kube-dns"),
        ports=(
            ServicePort("dns", 53, "UDP", 53),
            ServicePort("dns-tcp", 53, "TCP", 53),
            ServicePort("metrics", 9153, "TCP", 9153),
        ),
        selector=dict(DNS_LABELS),
        cluster_ip=kube_dns_ip(cluster),
        labels={"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"},
    )


INGRESS_NAMESPACE = "ingress-nginx"
INGRESS_LABELS = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}


def ingress_controller() -> Workload:
    """ingress-nginx's controller: a real nginx (emu/ingress.py) in a pod of its namespace."""
    template = PodTemplate(
        labels=dict(INGRESS_LABELS),
        containers=(Container("controller", (ContainerPort(80, "TCP", "http"), ContainerPort(443, "TCP", "https"))),),
        annotations={SERVED_BY: "nginx"},
    )
    return Workload(
        ObjectRef(SYSTEM_FILE, "Deployment", INGRESS_NAMESPACE, "ingress-nginx-controller"),
        1,
        LabelSelector.of(INGRESS_LABELS),
        template,
    )


def ingress_service(dual: bool = False) -> ServiceSpec:
    """Exposed as a LoadBalancer (so also on NodePorts), as ingress-nginx's cloud manifests do;
    `dual` (a dual-stack cluster, issue 15): PreferDualStack, as the chart's
    `controller.service.ipFamilyPolicy` is set for one, so it has an IPv6 ClusterIP, NodePorts
    and LoadBalancer address too."""
    return ServiceSpec(
        ref=ObjectRef(SYSTEM_FILE, "Service", INGRESS_NAMESPACE, "ingress-nginx-controller"),
        type="LoadBalancer",
        external_traffic_policy="Cluster",
        ports=(ServicePort("http", 80, "TCP", "http"), ServicePort("https", 443, "TCP", "https")),
        selector=dict(INGRESS_LABELS),
        labels=dict(INGRESS_LABELS),
        ip_family_policy="PreferDualStack" if dual else "",
    )


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
    namespaces = manifests.namespaces
    if any(getattr(i, "kind", "Ingress") == "Ingress" for i in manifests.ingresses) and not any(
        w.ref.namespace == INGRESS_NAMESPACE for w in workloads
    ):
        # An Ingress needs a controller: ingress-nginx, deployed as its manifests do.
        workloads = workloads + (ingress_controller(),)
        services = services + (ingress_service(cluster.ip_family == "dual"),)
        if INGRESS_NAMESPACE not in {n.name for n in namespaces}:
            namespaces = namespaces + (Namespace(INGRESS_NAMESPACE, {"app.kubernetes.io/name": "ingress-nginx"}),)
    return dataclasses.replace(manifests, workloads=workloads, services=services, namespaces=namespaces)
