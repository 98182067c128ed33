"""kube-proxy's largeClusterMode (iptables mode), as upstream's appendServiceCommentLocked.

Past 1,000 endpoints in all (largeClusterEndpointsThreshold, summed over every proxied service
port, ready or not), the rules from a KUBE-SVC/SVL chain to its endpoints and the rules of the
KUBE-SEP chains carry no comment; every other rule keeps its own. The fixture's Services hold
24 endpoints; web-sticky (ClientIP affinity, one port) is given more in a second slice.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

from testbed.kubeproxy import build_ruleset, render
from testbed.kubeproxy.iptables import LARGE_CLUSTER_ENDPOINTS, large_cluster
from testbed.kubeproxy.partial import render_sync
from testbed.plan.service_model import EndpointPlan
from testbed.plan.services import update_endpoints
from testbed.rules import Packet, trace

from ._services import NODES, POD_SUBNET, world
from .test_kubeproxy_partial import apply

NODE = "kind-worker"


def total(plan) -> int:
    return sum(
        len(plan.endpoints(s.namespace, s.name, p.name, p.protocol))
        for s in plan.services
        if s.proxied
        for p in s.ports
    )


def grown(plan, to: int, ready: bool = True):
    """The fixture with web-sticky's extra endpoints bringing the total to `to`."""
    base = next(s for s in plan.slices if s.service == "web-sticky")
    n = to - total(plan)
    eps = tuple(
        EndpointPlan(f"10.244.{100 + i // 250}.{i % 250 + 1}", NODE, f"extra-{i}", ready=ready) for i in range(n)
    )
    out = dataclasses.replace(
        plan, slices=(*plan.slices, dataclasses.replace(base, name="web-sticky-extra", endpoints=eps))
    )
    assert total(out) == to
    return out


def iptables_text(plan) -> str:
    return render(build_ruleset(plan, NODE, NODES[NODE][0], POD_SUBNET, "iptables"))


def test_the_threshold_is_upstreams_and_counts_every_endpoint():
    plan = world()[3]
    assert total(plan) == 24 and not large_cluster(plan)
    assert not large_cluster(grown(plan, LARGE_CLUSTER_ENDPOINTS))  # 1,000: still commented
    assert large_cluster(grown(plan, LARGE_CLUSTER_ENDPOINTS + 1))
    assert large_cluster(grown(plan, LARGE_CLUSTER_ENDPOINTS + 1, ready=False))  # not ready ones count too


def test_a_large_cluster_drops_the_endpoint_comments_and_only_those():
    plan = world()[3]
    small, large = iptables_text(grown(plan, 1000)), iptables_text(grown(plan, 1001))
    for text, commented in ((small, True), (large, False)):
        lines = text.splitlines()
        to_endpoints = [l for l in lines if l.startswith("-A KUBE-SVC-") and "-j KUBE-SEP-" in l]
        sep = [l for l in lines if l.startswith("-A KUBE-SEP-")]
        assert len(to_endpoints) > 1900 and len(sep) > 1900  # 980 endpoints of web-sticky, and its affinity rules
        assert any("--rcheck" in l for l in to_endpoints)  # web-sticky's affinity rules too
        assert all(("-m comment" in l) == commented for l in to_endpoints + sep)
        others = [l for l in lines if l.startswith("-A ") and l not in to_endpoints and l not in sep]
        assert [l for l in others if "-m comment" in l] == [
            l for l in small.splitlines() if l in others and "-m comment" in l
        ]
        assert any('cluster IP" ' in l and l.startswith("-A KUBE-SVC-") for l in others)  # the masquerade rule keeps it
    assert len(large) < len(small) * 0.7


def test_a_large_clusters_rules_still_spread_a_service_evenly_over_its_endpoints():
    plan = grown(world()[3], 1001)
    ruleset = build_ruleset(plan, NODE, NODES[NODE][0], POD_SUBNET, "iptables")
    svc = next(s for s in plan.services if s.name == "web-sticky")
    eps = [str(e) for e in plan.endpoints(svc.namespace, svc.name, "", "TCP")]
    assert len(eps) == 1001 - 21
    spread = trace(ruleset, Packet("10.244.1.7", svc.cluster_ip, svc.ports[0].port, "TCP")).endpoints()
    assert spread == {ep: Fraction(1, len(eps)) for ep in eps}


def test_partial_syncs_across_the_threshold_equal_a_full_load():
    """Upstream's partial sync would leave the unchanged Services' comments until its next full
    sync; here a partial sync is the difference of the two rulesets, so crossing the threshold
    rewrites every chain whose comments went or came, and the kernel holds what a full load gives."""
    _, _, pods, base = world()
    steps = [
        grown(base, 1000),
        grown(base, 1001),  # large from here
        grown(update_endpoints(base, [p for p in pods if p.name != "web-canary"]), 1001),
        grown(base, 1000),  # back under the threshold
    ]
    host_ip = NODES[NODE][0]
    rulesets = [build_ruleset(p, NODE, host_ip, POD_SUBNET, "iptables") for p in steps]
    live: dict = {}
    apply("iptables", live, render_sync(rulesets[0], None, full=True).text)
    for previous, ruleset in zip(rulesets, rulesets[1:]):
        sync = render_sync(ruleset, previous, full=False)
        assert not sync.full and sync.text
        apply("iptables", live, sync.text)
        fresh: dict = {}
        apply("iptables", fresh, render(ruleset))
        assert live == fresh
