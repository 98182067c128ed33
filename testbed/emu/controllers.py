"""The cluster's controllers, an ordered list that realises the desired state (emu/).

A change is: a new desired state (plan/'s Plan, replanned), then each controller's
`sync(desired)` in this order, which is Kubernetes' graceful order for a change — new pods
first, then the rules, then the pods that left:

- PodSandboxes: every planned pod has a network namespace and veth pair (emu/pods.py); a
  recreated bare pod with the same name is the exception: its old sandbox goes first;
- Routing: with routing bgp, one bird2 per node, started once, converged before anything else;
- the agent (emu/agent_proc.py): serves the new pods' ports, and the leaving ones' until the end;
- KubeProxy (iptables or nftables mode): one `iptables-restore --noflush` or `nft -f` per node
  of the Plan's compiled kube-proxy rulesets;
- EgressMasquerade: the Plan's egress table on every node, towards the outside subnets;
- LoadBalancerAnnouncer: each LoadBalancer ingress IP held by the node the Plan assigns
  (plan/loadbalancers.py) as a /32 on lo (this kernel has no dummy devices), so it answers
  ARP for it on the underlay (proxy ARP would not: the kernel never proxies an address of the
  same link); its kube-proxy rules DNAT the traffic in PREROUTING, before local delivery;
- ServiceRoutes: external hosts and the underlay router route each Service external IP (and the
  Service range, when the topology advertises it) to a node (plan/service_routes.py);
- ClusterDns: dnsmasq in each CoreDNS pod with the Plan's records, every pod's resolv.conf;
- PolicyProvider: the Plan's NetworkPolicy table per node, loaded whole or updated by set elements;
- the ingress controller (emu/ingress.py): nginx with the Plan's ingress configuration;
- LeavingPods: pods no longer planned leave the agent (its sockets would keep a deleted
  namespace alive), then lose their namespace.

Teardown stops them in reverse. None of them reads manifests: the Plan is the whole input.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from typing import Protocol

from ..errors import KernelError
from ..kubeproxy import render_iptables_bootstrap
from ..kubeproxy.conntrack import conntrack_flushes
from ..kubeproxy.partial import FULL_SYNC_PERIOD, SyncText, needs_full_sync, render_sync
from ..netpol.compiler import reconcile_rulesets
from ..plan.ipv6 import is_ipv6, policy_script6
from ..plan.model import NodePlan, Plan, PodPlan
from ..plan.service_model import ServicesPlan
from ..plan.service_routes import ServiceRoute, routes_by_netns_key
from ..plan.v6first import is_v6first
from ..rules import chain_texts
from ..rules.model import Ruleset
from ..rules.render_nft import render_block
from . import podfs, rules
from .agent_proc import AgentProcess
from .bgp import BgpDaemons
from .daemon import Daemon
from .dns import DnsServer, remove_resolv_confs
from .dualstack import agent_ipv6
from .ledger import Ledger, netns_name
from .podfiles import Memo, pod_files, write_pod_files
from .podfiles_ahead import FilesAhead
from .pods import PodNetwork
from .runner import RestoreLoader, Runner


class Controller(Protocol):
    """One controller of the emulated cluster."""

    phase: str  # the build-time phase it is timed under (EmulatedCluster.timings)

    def sync(self, desired: Plan) -> None:
        """Make the live cluster match `desired`, touching only what changed."""

    def daemons(self) -> list[Daemon]:
        """The helper processes it runs now, in stop order."""

    def stop(self) -> None:
        """Undo what it made that the final sweep would not (processes are stopped before)."""


def ids(pods: Sequence[PodPlan]) -> set[tuple[str, str]]:
    """A pod's identity: its sandbox key and uid (a recreated pod keeps the key, not the uid)."""
    return {(p.key, p.uid) for p in pods}


class PodSandboxes:
    """Every planned pod gets its sandbox: all at the first sync, then the new ones."""

    phase = "pods"

    def __init__(self, ledger: Ledger, runner: Runner, agent: AgentProcess) -> None:
        self.ledger, self.runner, self.agent = ledger, runner, agent
        self.network: PodNetwork | None = None
        self.live: tuple[PodPlan, ...] = ()  # the pods that have a sandbox now
        self.added = self.recreated = 0  # at the last sync

    def sync(self, desired: Plan) -> None:
        if self.network is None:
            self.network = PodNetwork(desired, self.ledger, self.runner)
            self.live = desired.pods
            self.network.build()
            self.added = self.recreated = 0
            return
        old, new = ids(self.live), ids(desired.pods)
        added = [p for p in desired.pods if (p.key, p.uid) not in old]
        leaving = [p for p in self.live if (p.key, p.uid) not in new]
        clash = {p.key for p in added} & {p.key for p in leaving}
        if clash:  # pods are immutable: the old pod of that name goes before the new one comes
            self.agent.serve([p for p in self.agent.pods if p.key not in clash])
            self.network.delete_pods([p for p in leaving if p.key in clash])
            self.live = tuple(p for p in self.live if p.key not in clash)
        self.network.plan = desired
        if added:
            self.live += tuple(added)  # before: a half-made sandbox is still deleted at teardown
            self.network.add_pods(added)
        self.added, self.recreated = len(added), len(clash)

    def remove(self, pods: Sequence[PodPlan]) -> None:
        if self.network is not None and pods:
            gone = ids(pods)
            self.network.delete_pods(pods)
            self.live = tuple(p for p in self.live if (p.key, p.uid) not in gone)

    def daemons(self) -> list[Daemon]:
        return []

    def stop(self) -> None:
        """Every sandbox: deleting a namespace deletes its veth pair."""
        if self.network is not None:
            self.network.delete_pods(self.live)


class Agent:
    """The agent serves every planned pod's ports; pods that are leaving keep theirs until
    LeavingPods runs, after the rules stopped sending them traffic."""

    phase = "agent"

    def __init__(self, agent: AgentProcess) -> None:
        self.agent = agent

    def sync(self, desired: Plan) -> None:
        self.agent.ipv6 = agent_ipv6(desired, self.agent.ledger.tag)  # dual-stack: serve IPv6 too
        if self.agent.proc is None:
            self.agent.externals = desired.externals
            # its READY is awaited by AgentReady, after the rules: the agent's start (a Python
            # process opening every pod's sockets) runs beside the rules' loads, not before them
            self.agent.start(desired.pods, wait=False)
            return
        exited = desired.conditions.exited if desired.conditions is not None else frozenset()
        serving = [p for p in desired.pods if p.full_name not in exited]  # an exited pod answers nothing
        want = ids(serving)
        stopped = [p for p in self.agent.pods if p.full_name in exited]
        if want - ids(self.agent.pods) or stopped:  # new pods: served along with those still leaving
            # Its READY is awaited by KubeProxy just before its first commit (kube-proxy's
            # `ready`): the new pods are served before any rule sends them traffic, and the
            # rules are rendered meanwhile (issue 18); AgentReady awaits it too, at the latest.
            self.agent.serve(
                serving + [p for p in self.agent.pods if (p.key, p.uid) not in want and p.full_name not in exited],
                wait=False,
            )

    def daemons(self) -> list[Daemon]:
        return [d for d in self.agent.daemons if d.proc is not None]

    def stop(self) -> None:
        self.agent.stop()


class AgentReady:
    """The agents a build started are serving (their READY read): the last step before pods
    may leave, once every rule is loaded. Until then they started beside the other controllers."""

    phase = "agent"

    def __init__(self, agent: AgentProcess) -> None:
        self.agent = agent

    def sync(self, desired: Plan) -> None:
        self.agent.wait_started()

    def daemons(self) -> list[Daemon]:
        return []

    def stop(self) -> None:
        pass


class LeavingPods:
    """Last: the pods no longer planned leave the agent, then lose their sandbox."""

    phase = "controllers"

    def __init__(self, sandboxes: PodSandboxes, agent: AgentProcess) -> None:
        self.sandboxes, self.agent = sandboxes, agent
        self.removed = 0  # at the last sync

    def sync(self, desired: Plan) -> None:
        want = ids(desired.pods)
        leaving = [p for p in self.sandboxes.live if (p.key, p.uid) not in want]
        if leaving:
            self.agent.serve(desired.pods)
            self.sandboxes.remove(leaving)
        self.removed = len(leaving)

    def daemons(self) -> list[Daemon]:
        return []

    def stop(self) -> None:
        pass


class Routing:
    """With routing bgp: bird2 on every node (and router), started once; the network never
    changes after the build."""

    phase = "bgp"

    def __init__(self, ledger: Ledger, runner: Runner) -> None:
        self.ledger, self.runner = ledger, runner
        self.bgp: BgpDaemons | None = None

    def sync(self, desired: Plan) -> None:
        if self.bgp is None and desired.network is not None and desired.network.bgp:
            self.bgp = BgpDaemons(desired, self.ledger, self.runner)
            self.bgp.start()

    def daemons(self) -> list[Daemon]:
        return [d for _, d in sorted(self.bgp.daemons.items())] if self.bgp is not None else []

    def stop(self) -> None:
        if self.bgp is not None:
            self.bgp.stop()


class KubeProxy:
    phase = "controllers"

    def __init__(
        self,
        runner: Runner,
        ledger: Ledger,
        full_sync_period: float = FULL_SYNC_PERIOD,
        ready: Callable[[], None] = lambda: None,
    ) -> None:
        self.runner, self.ledger = runner, ledger
        # Called once in each sync before anything is committed (and when nothing is): what must
        # be done before the rules may send traffic (emu/cluster.py: the agent serving the new
        # pods, AgentProcess.wait_reloaded); the rules are rendered and written ahead meanwhile.
        self.ready = ready
        self.previous: dict[str, Ruleset] = {}  # node -> the Ruleset its kernel holds (last load)
        self.bootstrapped: set[str] = set()
        self.services: ServicesPlan | None = None  # the ServicesPlan last synced
        self.full_sync_period = full_sync_period
        self.last_full: dict[str, float] = {}  # node -> time.monotonic() of its last full sync
        self.failed: set[str] = set()  # nodes whose last load failed: their next sync is full
        self.kinds: dict[str, str] = {}  # node -> full | partial | unchanged, at the last sync
        self.paused: set[str] = set()  # nodes whose kube-proxy is stopped (a fault): rules go stale
        self.synced: dict[str, ServicesPlan] = {}  # node -> the view its rules were built from
        self.ipv6 = False  # a single-stack IPv6 plan (plan/ipv6.py): ip6tables-restore
        self.sessions: dict[tuple[str, str], RestoreLoader] = {}  # (program, node netns) -> its restore process
        self.fallbacks = 0  # loads that fell back to a full restore by a process of their own
        self.ahead_failed: dict[str, KernelError] = {}  # node -> why its text could not be written ahead

    def sync(self, desired: Plan) -> None:
        """Load the compiled kube-proxy rules of every node whose view of the Services changed
        (one atomic transaction per node, concurrently). Like kube-proxy, nothing is reloaded
        when no Service or endpoint changed (a policy or a label change), and a sync is partial
        (partial.py: only the chains and elements that changed) unless it is the first, follows a
        failure, or comes `full_sync_period` seconds after the node's last full one. A node's view
        is the Plan's Services, or, while a change travels (issue 19), what that node has seen."""
        if desired.services is None or desired.kube_proxy_mode == "none":
            self.ready()
            return
        self.ipv6 = is_ipv6(desired)
        views, changed = self._changes(desired)
        if not changed:
            self.ready()
            self.services = desired.services
            return
        rulesets = desired.kube_proxy_rulesets
        syncs: list[tuple[NodePlan, Ruleset, SyncText]] = []
        self.ahead_failed.clear()

        def rendered() -> Iterator[Callable[[], None]]:
            with chain_texts.shared():  # nodes that share a Service port's rules share their text
                for n in changed:
                    syncs.append((n, rulesets[n.name], self._sync_text(n, rulesets[n.name])))
                    # written ahead to its restore process while the next node's text renders
                    yield functools.partial(self._ahead, desired, *syncs[-1])

        # The texts are written ahead (nothing committed) while this thread renders the next
        # and then waits for `ready`; each node's load waits for its text's write ahead, writes
        # the rest and commits.
        aheads: list[futures.Future[None]] = []
        try:
            aheads = rules.started(rendered())  # (a failure there waits for the writes it started)
            self.ready()
            rules.in_parallel(
                [functools.partial(self._load_after, ahead, desired, *sync) for ahead, sync in zip(aheads, syncs)]
            )
        finally:  # a text written ahead and not loaded (a failure before) is dropped, never committed
            futures.wait(aheads)
            for n, _, _ in syncs:
                session = self.sessions.get((self.program(), netns_name(self.ledger.tag, n.key)))
                if session is not None:
                    session.abort()
        for ahead in aheads:
            ahead.result()
        self._flush_conntrack(views, changed)
        for node in changed:
            self.synced[node.name] = views[node.name]
        self.services = desired.services

    def _changes(self, desired: Plan) -> tuple[dict[str, ServicesPlan], list[NodePlan]]:
        """Each running node's view of the Services, and the nodes whose view changed since their last sync."""
        services = desired.services
        assert services is not None  # sync returns before without Services
        nodes = [n for n in desired.nodes if n.name not in self.paused]  # a stopped kube-proxy goes stale
        views = {
            n.name: desired.conditions.services_of(n.name, services) if desired.conditions is not None else services
            for n in nodes
        }
        # The nodes share their views: each (synced, wanted) pair is compared once (a policy
        # change compared 10 equal copies of 1,000 endpoints, 17 ms on a busy VM).
        differs: dict[tuple[int, int], bool] = {}
        for n in nodes:
            before, after = self.synced.get(n.name), views[n.name]
            if (id(before), id(after)) not in differs:
                differs[id(before), id(after)] = before is not after and before != after
        changed = [
            n
            for n in nodes
            if n.name not in self.bootstrapped or differs[id(self.synced.get(n.name)), id(views[n.name])]
        ]
        return views, changed

    def resume(self, node: str, desired: Plan) -> None:
        """kube-proxy started again on `node`: it programs the current state at once."""
        self.paused.discard(node)
        if desired.services is None or desired.kube_proxy_mode == "none":
            return
        plan_node = desired.node(node)
        ruleset = desired.kube_proxy_rulesets[node]
        self._load(desired, plan_node, ruleset, self._sync_text(plan_node, ruleset))
        self.previous[node] = ruleset
        self.bootstrapped.add(node)

    def _sync_text(self, node: NodePlan, ruleset: Ruleset) -> SyncText:
        """What this node's sync writes: full or partial (partial.py), from what its kernel holds."""
        previous = self.previous.get(node.name)
        since = time.monotonic() - self.last_full.get(node.name, float("-inf"))
        return render_sync(
            ruleset, previous, needs_full_sync(previous, node.name in self.failed, since, self.full_sync_period)
        )

    def _ahead(self, plan: Plan, node: NodePlan, ruleset: Ruleset, sync: SyncText) -> None:
        """Write the beginning of a node's sync text (up to its first COMMIT) to the node's
        restore process ahead of `_load` (emu/restorer.py; iptables mode): nothing is committed
        before `_load`, which keeps the order of a node's first load (route, rules, jumps). If
        that fails the process is gone, and `_load` falls back to a full restore by a process of
        its own, as when the load itself finds it gone (`_restore_or_full`)."""
        if plan.kube_proxy_mode != "iptables" or not sync.text:
            return
        try:
            self._session(netns_name(self.ledger.tag, node.key)).ahead(sync.text)
        except KernelError as exc:  # the process was gone (or went): `_load` falls back as a load would
            self.ahead_failed[node.name] = exc

    def _load_after(
        self, ahead: futures.Future[None], plan: Plan, node: NodePlan, ruleset: Ruleset, sync: SyncText
    ) -> None:
        """`_load` once the node's text was written ahead (or that failed: its error is read
        after). No deadlock in the pool: that job was queued, so started, before this one."""
        futures.wait([ahead])
        self._load(plan, node, ruleset, sync)

    def _load(self, plan: Plan, node: NodePlan, ruleset: Ruleset, sync: SyncText) -> None:
        ns = netns_name(self.ledger.tag, node.key)
        first = node.name not in self.bootstrapped
        if first:
            # A real node sends what it cannot route to its default gateway; ours have none
            # (nothing leaves the emulation). Without a route for the service CIDR, a packet
            # to a ClusterIP that was not DNATed gets "network unreachable" before reaching
            # FORWARD, where kube-proxy REJECTs Services without endpoints.
            # From a thread in the node's namespace, not `ip -n`: that copies the VM's mount table,
            # one mount per pod namespace (10,000 pods: 20-40 ms a node for nothing).
            self.runner.run_in(ns, ["ip", "route", "replace", plan.service_subnet, "dev", "eth0"])
        self.failed.add(node.name)  # until the load below succeeded
        if sync.text:
            if plan.kube_proxy_mode == "iptables":
                sync = self._restore_or_full(ns, node, ruleset, sync)
            else:
                rules.nft_load(self.runner, ns, sync.text)
        if first and plan.kube_proxy_mode == "iptables":
            # by a process of its own: `-I` is not idempotent, so never retried after a failure
            # whose commit is unknown (as the persistent session's fallback below is)
            self.restore_once(ns, render_iptables_bootstrap(ruleset))
        self.failed.discard(node.name)
        self.previous[node.name] = ruleset  # per node: a failure elsewhere leaves this one's right
        self.bootstrapped.add(node.name)
        if sync.full:
            self.last_full[node.name] = time.monotonic()
        self.kinds[node.name] = "full" if sync.full else "partial" if sync.text else "unchanged"

    def program(self) -> str:
        """iptables-restore for this proxier's family (emu/kubeproxy6.py: ip6tables-restore; a
        single-stack IPv6 cluster's only proxier too, plan/ipv6.py)."""
        return "ip6tables-restore" if self.ipv6 else "iptables-restore"

    def restore(self, ns: str, text: str) -> None:
        """One transaction into the node's persistent restore process (emu/restorer.py), started
        at the node's first load and ended with the cluster (stop)."""
        self._session(ns).load(text)

    def _session(self, ns: str) -> RestoreLoader:
        """The node's restore process for this proxier's family (started at its first load)."""
        key = (self.program(), ns)
        session = self.sessions.get(key)
        if session is None:
            session = self.sessions[key] = self.runner.restore_session(
                ns,
                [key[0], "--noflush", "--wait", "-v"],
                log=os.path.join(self.ledger.dir, f"{key[0]}-{ns}.log"),
                name=os.path.join(self.ledger.dir, ns, key[0]),  # argv[0]: whose it is, in ps
            )
        return session

    def restore_once(self, ns: str, text: str) -> None:
        """The same by a process of its own (Runner.run_in)."""
        (rules.ip6tables_restore if self.program() == "ip6tables-restore" else rules.iptables_restore)(
            self.runner, ns, text
        )

    def _restore_or_full(self, ns: str, node: NodePlan, ruleset: Ruleset, sync: SyncText) -> SyncText:
        """Load `sync` through the node's session; if that process refused it or died, the
        kernel holds either the last load or this one (each table commits whole), so a full
        restore of `ruleset` (idempotent, and it deletes the previous load's gone chains) by a
        process of its own makes it right either way: upstream's syncProxyRules likewise makes
        its next sync a full one after a failed restore (needFullSync). A text the kernel
        rejects fails again there and is raised. Returns what was loaded."""
        try:
            failed = self.ahead_failed.pop(node.name, None)
            if failed is not None:  # found gone when its text was written ahead
                raise failed
            self.restore(ns, sync.text)
            return sync
        except KernelError:
            self.fallbacks += 1
            full = sync if sync.full else render_sync(ruleset, self.previous.get(node.name), True)
            self.restore_once(ns, full.text)
            return full

    def _flush_conntrack(self, views: dict[str, ServicesPlan], nodes: Sequence[NodePlan]) -> None:
        """UDP/SCTP flows to removed endpoints live on in conntrack; kube-proxy deletes them."""
        computed: dict[tuple[int, int], list] = {}  # nodes that move between the same views share the work
        for node in nodes:
            before, after = self.synced.get(node.name), views[node.name]
            if before is None:
                continue
            pair = (id(before), id(after))
            if pair not in computed:
                computed[pair] = list(conntrack_flushes(before, after))
            flushes = computed[pair]
            ns = netns_name(self.ledger.tag, node.key)
            for flush in flushes:
                # exit 1 means "0 flow entries deleted": nothing to clear on this node
                self.runner.run_in(ns, flush.argv(), check=False)

    def daemons(self) -> list[Daemon]:
        return []

    def stop(self) -> None:
        """End every node's restore process (each exits at the end of its input)."""
        sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            session.close()


LB_DEVICE = "lo"


def move_announcements(runner: Runner, announced: dict[str, str], want: dict[str, str]) -> dict[str, str]:
    """LoadBalancer addresses (IP -> the node namespace holding it) from `announced` to `want`:
    each taken off the node that no longer holds it and put on the one that does, one `ip` batch
    per node touched. Returns `want`, the new state."""
    batches: dict[str, list[str]] = {}
    for ip, ns in announced.items():
        if want.get(ip) != ns:
            batches.setdefault(ns, []).append(_lb_line(ip, False))
    for ip, ns in want.items():
        if announced.get(ip) != ns:
            batches.setdefault(ns, []).append(_lb_line(ip, True))
    for ns, lines in batches.items():
        runner.ip_batch(lines, netns=ns)
    return want


def _lb_line(ip: str, add: bool) -> str:
    """An IPv4 address on lo (the node answers ARP for it anyway); an IPv6 one (an ipFamily ipv6
    cluster's) as a dual-stack node holds its IPv6 load balancer addresses (emu/edges6.py)."""
    if ":" in ip:
        from .edges6 import lb_line6  # it imports this module

        return lb_line6(ip, add)
    return f"addr {'replace' if add else 'del'} {ip}/32 dev {LB_DEVICE}"


class LoadBalancerAnnouncer:
    phase = "controllers"

    def __init__(self, runner: Runner, ledger: Ledger) -> None:
        self.runner, self.ledger = runner, ledger
        self.announced: dict[str, str] = {}  # LB IP -> node netns

    def sync(self, desired: Plan) -> None:
        keys = {n.name: n.key for n in desired.nodes}
        want = {ip: netns_name(self.ledger.tag, keys[node]) for ip, node in desired.lb_announcers.items()}
        self.announced = move_announcements(self.runner, self.announced, want)

    def daemons(self) -> list[Daemon]:
        return []

    def stop(self) -> None:
        pass


class ServiceRoutes:
    """The emulated cloud's routes to Service addresses (plan/service_routes.py): each external
    IP, and the Service range when the topology advertises it, routed from every external host
    and the underlay router to one node, replaced and deleted as Services change."""

    phase = "controllers"

    def __init__(self, runner: Runner, ledger: Ledger) -> None:
        self.runner, self.ledger = runner, ledger
        self.routed: dict[str, dict[str, ServiceRoute]] = {}  # netns key -> destination -> route

    def sync(self, desired: Plan) -> None:
        self.apply(desired.service_routes)

    def apply(self, routes: Sequence[ServiceRoute]) -> None:
        """Replace the routes held with `routes` (emu/edges6.py's IPv6 ones too)."""
        want = routes_by_netns_key(routes)
        for key in sorted(set(want) | set(self.routed)):
            have, wanted = self.routed.get(key, {}), want.get(key, {})
            lines = [f"route del {dst}" for dst in sorted(have) if dst not in wanted]
            lines += [r.line() for dst, r in sorted(wanted.items()) if have.get(dst) != r]
            if lines:
                self.runner.ip_batch(lines, netns=netns_name(self.ledger.tag, key))
        self.routed = want

    def daemons(self) -> list[Daemon]:
        return []

    def stop(self) -> None:
        pass


class EgressMasquerade:
    """Every node masquerades pod traffic leaving for the outside subnets (egress, issue 8):
    the Plan's egress tables, loaded once (they never change: the network does not)."""

    phase = "controllers"

    def __init__(self, runner: Runner, ledger: Ledger) -> None:
        self.runner, self.ledger = runner, ledger
        self.loaded = False

    def sync(self, desired: Plan) -> None:
        if self.loaded or not desired.egress_tables:
            return
        for node in desired.nodes:
            # the table recreated in one transaction (atomic, idempotent), as rules/egress.py says
            text = render_block(desired.egress_tables[node.name], indent="  ", create="table {ref} {{}}")
            rules.nft_load(self.runner, netns_name(self.ledger.tag, node.key), text)
        self.loaded = True

    def daemons(self) -> list[Daemon]:
        return []

    def stop(self) -> None:
        pass


class ClusterDns:
    phase = "controllers"

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.servers: dict[str, DnsServer] = {}  # pod key -> its dnsmasq
        self.resolv: dict[str, tuple[str, str]] = {}  # netns name -> its (resolv.conf, hosts)
        self.ahead: FilesAhead | None = None  # the first build's files, being written
        self.files: Memo = {}  # pod_files' texts of the last sync's pods, by pod identity

    def write_ahead(self, desired: Plan) -> None:
        """Start writing the first sync's pod files now, beside the pods phase (emu/podfiles_ahead.py)."""
        if self.ahead is None and not self.resolv and desired.services is not None and desired.dns_server:
            self.ahead = FilesAhead(desired, self.ledger.tag, lambda: podfs.mount(Runner(), self.ledger.dir))
            # recorded first (texts unknown yet): a teardown removes whatever of them was written
            self.resolv = dict.fromkeys(self.ahead.names, ("", ""))

    def sync(self, desired: Plan) -> None:
        if desired.services is None:
            return
        a, cnames = desired.dns_records
        live = {p.key: f"{p.namespace}/{p.name}" for p in desired.pods if p.served_by == "dnsmasq"}
        for key in list(self.servers):
            if key not in live:
                self.servers.pop(key).stop()
        signalled: list[tuple[DnsServer, int | None]] = []
        for key in sorted(live):
            if key in self.servers:  # every server signalled, then each awaited: they re-read at once
                signalled.append((self.servers[key], self.servers[key].signal_update(a, cnames)))
            else:
                server = DnsServer(self.ledger, netns_name(self.ledger.tag, key), key=key, pod=live[key])
                if is_ipv6(desired):  # a single-stack IPv6 cluster: dnsmasq listens on the pod's IPv6 address
                    server.ipv6 = next(p.ip for p in desired.pods if p.key == key)
                elif is_v6first(desired.dual) and desired.dual is not None:  # kube-dns is IPv6 (plan/v6first.py)
                    server.ipv6 = desired.dual.pods[key]
                self.servers[key] = server  # before it starts: a failed start is stopped and its log kept
                server.start(a, cnames)
        self._pod_files(desired)  # while dnsmasq re-reads its records
        for server, offset in signalled:
            server.reloaded(offset)

    def _pod_files(self, desired: Plan) -> None:
        """Every pod's resolv.conf and /etc/hosts as the kubelet writes them (emu/podfiles.py)."""
        if self.ahead is not None:
            ahead, self.ahead = self.ahead, None
            written = ahead.result()
            if ahead.plan is desired:  # written for this very plan: nothing left to write
                self.resolv = written
                return
            self.resolv = written  # another plan: only its differences are written below
        want = pod_files(desired, self.ledger.tag, self.files)  # resolv.conf and /etc/hosts (emu/podfiles.py)
        remove_resolv_confs([ns for ns in self.resolv if ns not in want])
        self.resolv = {ns: t for ns, t in self.resolv.items() if ns in want}
        if desired.dns_server:
            # on the instance's own tmpfs, /etc/netns/<pod> a symlink to it (emu/podfs.py)
            write_pod_files(want, self.resolv, podfs.mount(Runner(), self.ledger.dir))
            self.resolv = want

    def daemons(self) -> list[Daemon]:
        return [s.daemon for _, s in sorted(self.servers.items()) if s.daemon is not None]

    def stop(self) -> None:
        if self.ahead is not None:  # a build that failed before the first sync: its files go too
            self.ahead.wait()
            self.ahead = None
        for server in self.servers.values():
            server.stop()
        self.servers.clear()
        remove_resolv_confs(sorted(self.resolv), targets=False)  # the tmpfs goes whole:
        podfs.unmount(Runner(), self.ledger.dir)
        self.resolv.clear()


class PolicyProvider:
    """NetworkPolicy enforcement: the Plan's compiled policy table in every node namespace."""

    phase = "controllers"

    def __init__(self, runner: Runner, ledger: Ledger) -> None:
        self.runner, self.ledger = runner, ledger
        self.loaded: dict[str, Ruleset] | None = None  # None: no policy was ever loaded
        self.actions: dict[str, str] = {}  # node -> load | patch | update | remove, last sync

    def sync(self, desired: Plan) -> None:
        """Apply what changed: set elements when only pods or labels did, else the whole table.
        Once a policy existed, the (then empty) table stays, as a provider's does."""
        wanted = desired.policies or desired.tiers  # v1 NetworkPolicies or the administrator's tiers
        new = dict(desired.policy_rulesets) if wanted or self.loaded is not None else None
        changes = reconcile_rulesets(self.loaded or {}, new or {})
        keys = {n.name: n.key for n in desired.nodes}
        loads = [(netns_name(self.ledger.tag, keys[node]), change.script) for node, change in sorted(changes.items())]
        if is_ipv6(desired):  # a single-stack IPv6 cluster: the same table, IPv6 types (plan/ipv6.py)
            loads = [(ns, policy_script6(text)) for ns, text in loads]
        rules.in_parallel([functools.partial(rules.nft_load, self.runner, ns, text) for ns, text in loads])
        self.loaded = new
        self.actions = {node: change.action for node, change in changes.items()}

    def daemons(self) -> list[Daemon]:
        return []

    def stop(self) -> None:
        pass
