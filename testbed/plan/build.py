"""Turn a ClusterSpec and Manifests into a Plan: controllers, scheduling, IPAM, routes.

The heart of plan/ (pure: no root, no subprocess). Same inputs and seed, same Plan — so a
run is reproducible and `testbed plan` shows exactly what `testbed up` will build.
"""

from __future__ import annotations

import dataclasses
import ipaddress

from ..netpol.model import policies_from
from ..spec.kinds import summary as kinds_summary
from ..spec.model import ClusterSpec, Manifests, NodeSpec, PodTemplate, Workload
from ..spec.selectors import LabelSelector
from . import controllers, dualstack, podnet, routing
from .ingress6 import with_ipv6_backends
from .ipam import HostLocal, node_cidrs, underlay_addresses
from .model import ExternalPlan, IngressPlan, NodePlan, PendingPod, Plan, PodPlan, PortPlan
from .naming import NameSource, host_veth_name, template_hash
from .scheduler import Scheduler, ServiceSelectors, default_selector, eviction
from .services import plan_services
from .system import SERVED_BY, with_system
from .underlay import member_prefixes, member_racks

# names.SimpleNameGenerator: generateName is cut to 63 - 5 characters before the random suffix.
MAX_GENERATED_NAME_BASE = 58


def plan_cluster(cluster: ClusterSpec, manifests: Manifests, seed: int = 0, system: bool = True) -> Plan:
    """The first plan of a cluster; `system` adds the cluster's own CoreDNS and kube-dns."""
    return replan(cluster, manifests, seed, system=system)


@dataclasses.dataclass(frozen=True)
class Desired:
    """What one owner wants: `count` pods from `template` (a bare pod: count 1, its own name)."""

    owner: str  # "" for a bare pod, else "ReplicaSet/web-5d59d67564", "ReplicationController/x"
    namespace: str
    base: str  # the pod name (bare) or the generateName base
    template: PodTemplate
    count: int
    # the controller's selector (a Deployment's ReplicaSet's includes the pod-template-hash):
    # kube-scheduler's default spreading spreads the pods it selects; None for a bare pod
    selector: LabelSelector | None = None
    # StatefulSet, DaemonSet (plan/controllers.py): fixed pod names in creation order; one pod
    # per eligible node (`nodes`, filled in at reconcile time); the governing Service
    names: tuple[str, ...] = ()
    per_node: bool = False
    nodes: tuple[str, ...] = ()
    service_name: str = ""
    # a Job's completionMode Indexed: `names` are the index bases <job>-<i> (plan/controllers.py)
    indexed: bool = False
    # StatefulSet, DaemonSet updates (plan/updates.py): live pods kept whatever their revision:
    # all with OnDelete, ordinals below `partition`, and `held` pod names / node names (a
    # rolling update's pods not yet replaced)
    on_delete: bool = False
    partition: int = 0
    held: frozenset[str] = frozenset()
    # DaemonSet: nodes where a daemon pod already running stays though no new one would be
    # made (a NoSchedule taint added since: the controller's shouldContinueRunning)
    staying: tuple[str, ...] = ()


def desired_pods(manifests: Manifests) -> list[Desired]:
    """Every owner's wish, as the controllers see it: bare pods, then each controller."""
    out = [Desired("", p.ref.namespace, p.ref.name, p.template, 1) for p in manifests.pods]
    for wl in manifests.workloads:
        base, owner, template = _pod_name_base(wl)
        selector = wl.selector
        if "pod-template-hash" in template.labels and wl.ref.kind == "Deployment":
            pth = ("pod-template-hash", template.labels["pod-template-hash"])
            selector = dataclasses.replace(selector, match_labels=tuple(sorted((*selector.match_labels, pth))))
        if wl.ref.kind in ("StatefulSet", "DaemonSet", "Job", "CronJob"):
            count, names, per_node = controllers.count_and_names(wl)
            out.append(
                Desired(
                    owner,
                    wl.ref.namespace,
                    base,
                    template,
                    count,
                    selector,
                    names=names,
                    per_node=per_node,
                    service_name=controllers.service_name(wl),
                    **controllers.update_fields(wl),
                )
            )
            continue
        out.append(Desired(owner, wl.ref.namespace, base, template, wl.replicas, selector))
    return out


def replan(
    cluster: ClusterSpec,
    manifests: Manifests,
    seed: int = 0,
    prev: Plan | None = None,
    deleted: frozenset[str] = frozenset(),
    desired: list[Desired] | None = None,
    system: bool | None = None,
) -> Plan:
    """Reconcile: the Plan the controllers reach from `prev` for these manifests.

    Like the ReplicaSet controller, existing pods are kept (same name, node, IP) while their
    owner still wants them — the oldest first, so scaling down removes the newest — and any
    shortfall is filled with new pods: new names, new IPs (host-local continues after the last
    address handed out). `deleted` pods (netns keys) are gone; their owner replaces them, which
    is how a deleted Deployment pod comes back with a new name and IP (scenario 001). `desired`
    overrides the manifests' wishes, e.g. the two ReplicaSets of a rolling update.
    """
    cidrs, warnings = node_cidrs(cluster)
    host_ips, external_ips = underlay_addresses(cluster)
    prefix = member_prefixes(cluster, external_ips)  # each member's rack subnet
    live_nodes = _live_nodes(cluster, prev)
    nodes = tuple(
        NodePlan(
            name=n.name,
            role=n.role,
            index=i,
            host_ip=host_ips[i],
            underlay_prefix=prefix[n.name],
            pod_cidr=cidrs[n.name],
            gateway=str(ipaddress.ip_network(cidrs[n.name]).network_address + 1),
            labels=dict(n.labels),
            taints=tuple(f"{t.key}:{t.effect}" for t in n.taints),
            key=f"n{i}",
            bridge=routing.pod_bridge(cluster.routing),
        )
        for i, n in enumerate(live_nodes)
    )
    outside = {sub.name for sub in cluster.subnets() if sub.outside}
    racks = member_racks(cluster, external_ips)
    externals = tuple(
        ExternalPlan(
            h.name,
            external_ips[h.name],
            prefix[h.name],
            f"x{i}",
            tuple(PortPlan(h.name, p.container_port, p.protocol, p.name) for p in h.ports),
            racks.get(h.name) in outside,
        )
        for i, h in enumerate(cluster.external_hosts)
    )
    user = manifests  # the policy world and the Ingresses are the user's, as emu/ always took them
    if system if system is not None else (prev.system if prev else True):
        manifests = with_system(cluster, manifests)
    wishes = desired_pods(manifests)
    if desired is not None:
        # `desired` overrides the owners it names (a rollout's two ReplicaSets); every other
        # owner — the cluster's own CoreDNS included — keeps its wish.
        named = {(w.owner, w.namespace, "" if w.owner else w.base) for w in desired}
        wishes = list(desired) + [w for w in wishes if (w.owner, w.namespace, "" if w.owner else w.base) not in named]
    wishes = [controllers.with_nodes(w, live_nodes) for w in wishes]
    controllers.check_bound(wishes, manifests)
    kept = _kept(prev, wishes, deleted)
    names = NameSource(seed, prev.name_draws if prev else None)
    ipam = HostLocal(cidrs, prev.ipam_next if prev else None, in_use=(p.ip for p in kept))
    scheduler = Scheduler(cluster.nodes, {n.name: n.labels for n in manifests.namespaces})
    node_specs = {n.name: n for n in cluster.nodes}
    wanted = {(w.owner, w.namespace, "" if w.owner else w.base): w.template for w in wishes}
    for pod in kept:
        scheduler.add(
            wanted[(pod.owner, pod.namespace, "" if pod.owner else pod.name)], pod.namespace, pod.labels, pod.node
        )
    bootstrap = frozenset(n.name for n in cluster.nodes if n.role == "control-plane")
    services_selecting = ServiceSelectors((s.namespace, s.selector) for s in manifests.services)
    taken = {p.name for p in kept} | {w.base for w in wishes if not w.owner}
    pods: list[PodPlan] = list(kept)
    pending: list[PendingPod] = []
    for wish in wishes:
        have = [
            (p.name, p.node)
            for p in kept
            if p.owner == wish.owner and p.namespace == wish.namespace and (wish.owner or p.name == wish.base)
        ]
        todo = controllers.slots(wish, have)
        if not todo:
            continue
        labels = wish.template.labels
        prepared = scheduler.prepare(
            wish.template,
            wish.namespace,
            labels,
            default_selector(wish.namespace, labels, wish.selector, services_selecting),
        )
        if prev is None and _is_system_dns(wish) and bootstrap:
            # kubeadm creates CoreDNS before any worker joins: a new kind cluster runs it on the
            # control plane, whatever the scheduler would choose among all nodes later
            prepared = dataclasses.replace(prepared, names=bootstrap)
        for fixed_name, fixed_node in todo:
            name = fixed_name or (wish.base if not wish.owner else _generate(names, wish, taken))
            if wish.indexed:  # an Indexed Job's pod: <job>-<index>-<suffix>, as the Job controller names it
                name = _generate(names, dataclasses.replace(wish, base=fixed_name), taken)
            template = controllers.pod_template(wish, name)
            # a daemon pod is bound to its node, as the DaemonSet controller's node affinity does
            node, why = (fixed_node, "") if fixed_node else scheduler.schedule(prepared)
            if node is None:
                warnings.append(f"pod {wish.namespace}/{name} stays Pending: {why}")
                pending.append(PendingPod(wish.namespace, name, why))
                continue
            evicted = eviction(node_specs[node], wish.template)
            if evicted is not None:
                # the taint manager (NoExecute): a pod evicted at once never runs here
                warnings.append(f"pod {wish.namespace}/{name} on {node}: {evicted.describe()}")
                if evicted.after == 0:
                    continue
            host = next(n for n in nodes if n.name == node)
            # a hostNetwork pod takes no address from the pod CIDR: its IP is the node's
            ip = host.host_ip if wish.template.host_network else ipam.allocate(node)
            if ip is None:
                warnings.append(f"pod {wish.namespace}/{name} stays Pending: node {node}'s pod CIDR is full")
                pending.append(PendingPod(wish.namespace, name, f"node {node}'s pod CIDR is full"))
                continue
            scheduler.bind(prepared, node)
            uid = names.uid(f"{wish.namespace}/{name}")
            address, gateway = routing.pod_addressing(cluster.routing, ip, cidrs[node], ipam.gateway(node))
            if wish.template.host_network:
                address, gateway = str(ipaddress.ip_interface(f"{ip}/{host.underlay_prefix}").network), ""
            pods.append(_pod_plan(wish.namespace, name, uid, node, ip, address, gateway, template, wish.owner))
    routes, route_warnings, network = routing.plan_network(cluster, nodes, externals)
    if cluster.ip_family == "ipv6":  # flannel's IPv6 VXLAN backend (plan/ipv6.py)
        from .ipv6 import network6  # deferred: an IPv4 cluster's plan needs no IPv6 module (start-up time)

        routes, network = network6(cluster, nodes, routes, network)
    services = plan_services(
        cluster, manifests, pods, seed, default_lb_pool(cluster), previous=prev.services if prev else None
    )
    warnings += list(services.warnings)
    kind_warnings, kind_notes = kinds_summary(manifests.others)
    ingress = None
    if any(p.served_by == "nginx" for p in pods):
        # deferred: only a cluster with the ingress controller needs ingress/ (start-up time)
        from ..ingress import certificates_needed, controller_config

        ingress = IngressPlan(
            controller_config(user.ingresses, services),
            {k: tuple(v) for k, v in certificates_needed(user.ingresses).items()},
            ipv6=cluster.ip_family in ("ipv6", "dual"),
        )
    plan = Plan(
        cluster=cluster.name,
        seed=seed,
        routing=cluster.routing,
        pod_subnet=cluster.pod_subnet,
        service_subnet=cluster.service_subnet,
        underlay_subnet=cluster.underlay_subnet,
        mtu=cluster.mtu,
        nodes=nodes,
        pods=tuple(pods),
        routes=tuple(routes),
        externals=externals,
        warnings=tuple(warnings + route_warnings + kind_warnings),
        notes=cluster.notes + tuple(kind_notes),
        ipam_next=dict(ipam.next),
        name_draws=dict(names.draws),
        generation=prev.generation + 1 if prev else 0,
        network=network,
        services=services,
        system=system if system is not None else (prev.system if prev else True),
        kube_proxy_mode=cluster.kube_proxy_mode,
        kube_proxy=cluster.kube_proxy,
        advertise_service_subnet=cluster.advertise_service_subnet,
        pending=tuple(pending),
        namespaces={n.name: dict(n.labels) for n in user.namespaces},
        policies=policies_from(user.policies),
        ingress=ingress,
        tiers=tuple(user.cluster_policies),
    )
    # the IPv6 half of a dual-stack cluster (issue 15)
    plan = dualstack.extend(cluster, plan, manifests.services, prev.dual if prev else None)
    return with_ipv6_backends(plan, user.ingresses)  # dual-stack backends' IPv6 endpoints (plan/ingress6.py)


def _is_system_dns(wish: Desired) -> bool:
    return wish.namespace == "kube-system" and wish.template.annotations.get(SERVED_BY) == "dnsmasq"


def default_lb_pool(cluster: ClusterSpec) -> str | None:
    """The emulated cloud's load balancer addresses: 50 addresses near the top of the underlay."""
    net = ipaddress.ip_network(cluster.underlay_subnet)
    if cluster.ip_family == "ipv6":  # the dual-stack IPv6 pool's host numbers (plan/ipv6.py)
        from .ipv6 import lb_pool6_of  # deferred: as network6 above

        return lb_pool6_of(net)
    if net.num_addresses < 128:
        return None
    top = net.broadcast_address
    return f"{top - 55}-{top - 6}"  # 192.168.1.200-192.168.1.249 on a /24


def _kept(prev: Plan | None, wishes: list[Desired], deleted: frozenset[str]) -> list[PodPlan]:
    """Previous pods still wanted by their owner, oldest first, at most `count` per owner."""
    if prev is None:
        return []
    budget: dict[tuple[str, str, str], int] = {}
    templates: dict[tuple[str, str, str], PodTemplate] = {}
    for w in wishes:
        key = (w.owner, w.namespace, "" if w.owner else w.base)
        # a DaemonSet keeps its pods where they may stay, not only where new ones may go
        budget[key] = budget.get(key, 0) + (len({*w.nodes, *w.staying}) if w.per_node else w.count)
        templates[key] = w.template
    fixed = {(w.owner, w.namespace): w for w in wishes if w.owner and (w.names or w.per_node)}
    served: dict[tuple[str, str], set[str]] = {}
    kept = []
    for pod in prev.pods:
        if pod.key in deleted:
            continue
        key = (pod.owner, pod.namespace, "" if pod.owner else pod.name)
        if budget.get(key, 0) <= 0:
            continue
        wish = fixed.get((pod.owner, pod.namespace))
        if wish is not None and not controllers.keeps(
            wish, pod.name, pod.node, pod.labels, served.setdefault(key[:2], set())
        ):
            continue  # a StatefulSet ordinal scaled away, a daemon pod on a node no longer eligible
        if not pod.owner and not _same_pod(pod, templates[key]):
            continue  # a bare pod whose spec changed is recreated (pods are immutable)
        budget[key] -= 1
        if not pod.owner:  # a bare pod's labels follow its manifest (labels are mutable)
            pod = dataclasses.replace(pod, labels=dict(templates[key].labels))
        kept.append(pod)
    return kept


def _live_nodes(cluster: ClusterSpec, prev: Plan | None) -> tuple[NodeSpec, ...]:
    """The nodes as they are now: a node relabelled in a running cluster (experiment/nodes.py)
    keeps its new labels in the plan, and the scheduler and DaemonSets see those."""
    if prev is None:
        return cluster.nodes
    now = {n.name: n.labels for n in prev.nodes}
    return tuple(dataclasses.replace(n, labels=dict(now[n.name])) if n.name in now else n for n in cluster.nodes)


def _same_pod(pod: PodPlan, template: PodTemplate) -> bool:
    ports = tuple(PortPlan(c.name, p.container_port, p.protocol, p.name) for c in template.containers for p in c.ports)
    return (
        pod.ports == ports
        and pod.containers == tuple(c.name for c in template.containers)
        and podnet.same_network(pod, template)
    )


def _generate(names: NameSource, wish: Desired, taken: set[str]) -> str:
    generate_name = f"{wish.base}-"[:MAX_GENERATED_NAME_BASE]
    while True:  # a suffix clash is possible in principle; Kubernetes retries too
        name = generate_name + names.suffix(f"{wish.namespace}/{wish.base}")
        if name not in taken:
            taken.add(name)
            return name


def _pod_name_base(wl: Workload) -> tuple[str, str, PodTemplate]:
    """(pod name base, owner, the template the pods get)."""
    if wl.ref.kind == "Deployment":
        # The Deployment owns ReplicaSet <name>-<pod-template-hash>, which owns the pods; the
        # ReplicaSet's template (hence its pods) carries the pod-template-hash label.
        pth = template_hash(wl.template)
        rs = f"{wl.ref.name}-{pth}"
        labels = {**wl.template.labels, "pod-template-hash": pth}
        return rs, f"ReplicaSet/{rs}", dataclasses.replace(wl.template, labels=labels)
    return wl.ref.name, f"{wl.ref.kind}/{wl.ref.name}", wl.template


def _pod_plan(
    namespace: str, name: str, uid: str, node: str, ip: str, cidr: str, gateway: str, template: PodTemplate, owner: str
) -> PodPlan:
    ports = tuple(PortPlan(c.name, p.container_port, p.protocol, p.name) for c in template.containers for p in c.ports)
    labels = dict(template.labels)
    return PodPlan(
        served_by=template.annotations.get(SERVED_BY, ""),
        namespace=namespace,
        name=name,
        uid=uid,
        node=node,
        ip=ip,
        prefix=ipaddress.ip_network(cidr).prefixlen,
        gateway=gateway,
        labels=labels,
        containers=tuple(c.name for c in template.containers),
        ports=ports,
        owner=owner,
        key=f"{namespace}_{name}",
        host_veth=host_veth_name(uid),
        hostname=template.hostname,
        subdomain=template.subdomain,
        **podnet.network_fields(template),
    )
