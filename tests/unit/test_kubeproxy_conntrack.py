"""Conntrack deletions after endpoint changes (kubeproxy/conntrack.py), as kube-proxy does them."""

from __future__ import annotations

from testbed.kubeproxy import ConntrackFlush, conntrack_flushes
from testbed.plan.services import update_endpoints

from ._services import world


def test_nothing_to_flush_when_nothing_changed():
    plan = world()[3]
    assert conntrack_flushes(plan, plan) == []


def test_a_removed_udp_endpoint_is_flushed_tcp_ones_are_not():
    _, _, pods, plan = world()
    after = update_endpoints(plan, [p for p in pods if p.ip != "10.244.1.3"])
    ip = plan.service("default", "web-all").cluster_ip
    assert conntrack_flushes(plan, after) == [
        ConntrackFlush("udp", orig_dst=ip, dst_nat="10.244.1.3", why="default/web-all:dns/UDP lost endpoint 10.244.1.3")
    ]
    assert conntrack_flushes(plan, after)[0].argv() == [
        "conntrack",
        "-D",
        "-p",
        "udp",
        "--orig-dst",
        ip,
        "--dst-nat",
        "10.244.1.3",
    ]


def test_endpoints_coming_back_flush_the_service_ip():
    _, _, pods, plan = world()
    empty = update_endpoints(plan, [])
    ip = plan.service("default", "web-all").cluster_ip
    assert conntrack_flushes(empty, plan) == [
        ConntrackFlush("udp", orig_dst=ip, why="default/web-all:dns/UDP has endpoints again")
    ]
    assert {f.dst_nat for f in conntrack_flushes(plan, empty)} == {
        "10.244.1.2",
        "10.244.1.3",
        "10.244.2.2",
        "10.244.2.3",
    }
    assert conntrack_flushes(None, plan)[0].orig_dst == ip  # the first apply clears leftovers too
