"""The cluster's network controllers, realised in the node namespaces (emu/).

What runs on every real node or in the control plane, each fed from the pure core and
re-synced after every change:
- kube-proxy (iptables or nftables mode): one `iptables-restore --noflush` or `nft -f` per node
  of the rules kubeproxy/ renders from the ServicesPlan;
- the emulated cloud's load balancer announcer: each LoadBalancer ingress IP is held by one
  node that may take its traffic — any node with policy Cluster, a node with a local endpoint
  with policy Local — the way MetalLB's layer-2 mode and a cloud LB's health checks pick
  nodes. The node holds it as a /32 on lo (this kernel has no dummy devices), so it answers
  ARP for it on the underlay (proxy ARP would not: the kernel never proxies an address of the
  same link);
  its kube-proxy rules DNAT the traffic in PREROUTING, before local delivery;
- cluster DNS: dnsmasq in each CoreDNS pod, its records re-written on every Service change,
  and every pod's resolv.conf;
- the NetworkPolicy provider: netpol/'s per-node nft table, loaded whole or updated by set
  elements.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..plan.dns import records
from ..plan.model import Plan
from ..rules.egress import egress_nft
from . import rules
from .dns import DnsServer, remove_resolv_confs, write_resolv_confs
from .ledger import Ledger, netns_name
from .runner import Runner


class KubeProxy:
    def __init__(self, runner: Runner, ledger: Ledger) -> None:
        self.runner, self.ledger = runner, ledger
        self.previous: dict[str, Any] = {}   # node -> last Ruleset (to delete stale chains)
        self.bootstrapped: set[str] = set()
        self.services: Any = None            # the ServicesPlan last synced

    def sync(self, plan: Plan) -> int:
        """Render and load every node's rules; returns the number of rules loaded.

        Like kube-proxy, nothing is reloaded when no Service or endpoint changed (a policy or a
        label change); otherwise the nodes' rules are built, then loaded concurrently, one
        atomic transaction per node.
        """
        from concurrent.futures import ThreadPoolExecutor

        from ..kubeproxy import build_ruleset

        if plan.services is None or plan.kube_proxy_mode == "none":
            return 0
        if plan.services == self.services and all(n.name in self.bootstrapped for n in plan.nodes):
            return 0
        rulesets = {n.name: build_ruleset(plan.services, n.name, n.host_ip, plan.pod_subnet, plan.kube_proxy_mode)
                    for n in plan.nodes}
        with ThreadPoolExecutor(max_workers=min(8, len(plan.nodes))) as pool:
            list(pool.map(lambda n: self._load(plan, n, rulesets[n.name]), plan.nodes))
        for node in plan.nodes:
            self.previous[node.name] = rulesets[node.name]
            self.bootstrapped.add(node.name)
        self._flush_conntrack(plan)
        self.services = plan.services
        return sum(len(c.rules) for r in rulesets.values() for t in r.tables for c in t.chains)

    def _load(self, plan: Plan, node: Any, ruleset: Any) -> None:
        from ..kubeproxy import render, render_iptables_bootstrap

        ns = netns_name(self.ledger.tag, node.key)
        first = node.name not in self.bootstrapped
        if first:
            # A real node sends what it cannot route to its default gateway; ours have none
            # (nothing leaves the emulation). Without a route for the service CIDR, a packet
            # to a ClusterIP that was not DNATed gets "network unreachable" before reaching
            # FORWARD, where kube-proxy REJECTs Services without endpoints.
            self.runner.ip_batch([f"route replace {plan.service_subnet} dev eth0"], netns=ns)
        if plan.kube_proxy_mode == "iptables":
            rules.iptables_restore(self.runner, ns, render(ruleset, self.previous.get(node.name)))
            if first:
                rules.iptables_restore(self.runner, ns, render_iptables_bootstrap(ruleset))
        else:
            rules.nft_load(self.runner, ns, render(ruleset))

    def _flush_conntrack(self, plan: Plan) -> None:
        """UDP/SCTP flows to removed endpoints live on in conntrack; kube-proxy deletes them."""
        from ..kubeproxy.conntrack import conntrack_flushes

        if self.services is None:
            return
        flushes = conntrack_flushes(self.services, plan.services)
        for node in plan.nodes if flushes else ():
            ns = netns_name(self.ledger.tag, node.key)
            for flush in flushes:
                # exit 1 means "0 flow entries deleted": nothing to clear on this node
                self.runner.run(["ip", "netns", "exec", ns, *flush.argv()], check=False)


def announcer_for(ip: str, targets: tuple[str, ...]) -> str | None:
    """The node that answers ARP for a LoadBalancer IP: stable per IP, among the eligible nodes."""
    if not targets:
        return None
    ordered = sorted(targets)
    return ordered[int(hashlib.sha256(ip.encode()).hexdigest(), 16) % len(ordered)]


def load_balancer_nodes(plan: Plan) -> list[str]:
    """Nodes a load balancer may use: as MetalLB and the cloud providers' service controller do,
    not those labelled node.kubernetes.io/exclude-from-external-load-balancers (kubeadm puts it
    on control-plane nodes). Where that leaves none (a single-node cluster, whose only node is
    the control plane) every node is used, so that kind's default cluster keeps a reachable
    LoadBalancer instead of needing `kubectl label node ... exclude-from-external-load-balancers-`."""
    from ..spec.node_labels import EXCLUDE_FROM_LB

    names = [n.name for n in plan.nodes if EXCLUDE_FROM_LB not in n.labels]
    return names or [n.name for n in plan.nodes]


LB_DEVICE = "lo"


class LoadBalancerAnnouncer:
    def __init__(self, runner: Runner, ledger: Ledger) -> None:
        self.runner, self.ledger = runner, ledger
        self.announced: dict[str, str] = {}   # LB IP -> node netns

    def desired(self, plan: Plan) -> dict[str, str]:
        if plan.services is None:
            return {}
        keys = {n.name: n.key for n in plan.nodes}
        eligible = load_balancer_nodes(plan)
        out: dict[str, str] = {}
        for svc in plan.services.services:
            for ip in svc.load_balancer_ingress:
                node = announcer_for(ip, plan.services.load_balancer_targets(svc.namespace, svc.name, eligible))
                if node is not None:
                    out[ip] = netns_name(self.ledger.tag, keys[node])
        return out

    def sync(self, plan: Plan) -> dict[str, str]:
        want = self.desired(plan)
        batches: dict[str, list[str]] = {}
        for ip, ns in self.announced.items():
            if want.get(ip) != ns:
                batches.setdefault(ns, []).append(f"addr del {ip}/32 dev {LB_DEVICE}")
        for ip, ns in want.items():
            if self.announced.get(ip) != ns:
                batches.setdefault(ns, []).append(f"addr replace {ip}/32 dev {LB_DEVICE}")
        for ns, lines in batches.items():
            self.runner.ip_batch(lines, netns=ns)
        self.announced = want
        return want


class EgressMasquerade:
    """Every node masquerades pod traffic leaving for the outside subnets (egress, issue 8).

    The rules are rules/egress.py's (pure); this only loads their text into each node."""

    def __init__(self, runner: Runner, ledger: Ledger) -> None:
        self.runner, self.ledger = runner, ledger
        self.loaded = False

    def sync(self, plan: Plan) -> None:
        network = plan.network
        outside = [s.cidr for s in (network.subnets if network is not None else ()) if s.outside]
        if self.loaded or not outside:
            return
        for node in plan.nodes:
            rules.nft_load(self.runner, netns_name(self.ledger.tag, node.key), egress_nft(plan.pod_subnet, outside))
        self.loaded = True


class ClusterDns:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.servers: dict[str, DnsServer] = {}   # pod key -> its dnsmasq
        self.resolv: set[str] = set()             # netns names given a resolv.conf

    def sync(self, plan: Plan) -> None:
        if plan.services is None:
            return
        dns_ip = next((s.cluster_ip for s in plan.services.services
                       if (s.namespace, s.name) == ("kube-system", "kube-dns")), None)
        a, cnames = records(plan.services, plan.pods)
        live = {p.key: f"{p.namespace}/{p.name}" for p in plan.pods if p.served_by == "dnsmasq"}
        for key in list(self.servers):
            if key not in live:
                self.servers.pop(key).stop()
        for key in sorted(live):
            if key in self.servers:
                self.servers[key].update(a, cnames)
            else:
                server = DnsServer(self.ledger, netns_name(self.ledger.tag, key), key=key, pod=live[key])
                self.servers[key] = server  # before it starts: a failed start is stopped and its log kept
                server.start(a, cnames)
        want = {netns_name(self.ledger.tag, p.key): p.namespace for p in plan.pods}
        remove_resolv_confs([ns for ns in self.resolv if ns not in want])
        if dns_ip:
            write_resolv_confs([(ns, want[ns]) for ns in want if ns not in self.resolv], dns_ip)
            self.resolv = set(want)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()
        remove_resolv_confs(sorted(self.resolv))
        self.resolv.clear()


class PolicyProvider:
    """NetworkPolicy enforcement: netpol/'s nft table in every node namespace."""

    def __init__(self, runner: Runner, ledger: Ledger) -> None:
        self.runner, self.ledger = runner, ledger
        self.world: Any = None

    def sync(self, plan: Plan, manifests: Any) -> dict[str, str]:
        """Apply what changed; returns node -> action (load | update | remove)."""
        from ..netpol.compiler import reconcile
        from ..netpol.world import World

        if manifests is None:
            return {}
        wanted = manifests.policies or getattr(manifests, "cluster_policies", ())   # v1 or the tiers
        new = World.from_plan(plan, manifests) if wanted or self.world is not None else None
        changes = reconcile(self.world, new)
        keys = {n.name: n.key for n in plan.nodes}
        for node, change in sorted(changes.items()):
            rules.nft_load(self.runner, netns_name(self.ledger.tag, keys[node]), change.script)
        self.world = new
        return {node: change.action for node, change in changes.items()}
