"""`testbed explain --trace` (rulepath.py): the rule path of a flow on each node it crosses, no root.

The compiled tables of every node (kube-proxy in both modes, the NetworkPolicy table) are
followed by the one tracer (rules/tracer.py); the expectations are Kubernetes' documented
behaviour: a ClusterIP flow is DNATed on the client's node and keeps the pod's address, a
NetworkPolicy drops at the destination's node, a NodePort with policy Cluster masquerades, a
Service without endpoints is rejected. A property test checks that the whole path (kube-proxy's
tables and the policy's together, every hook) gives the oracle's verdict for random policies.
"""

from __future__ import annotations

import os
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.cli import main
from testbed.kubeproxy import build_ruleset
from testbed.netpol import Flow, World, compile_cluster, decide
from testbed.plan.build import plan_cluster
from testbed.plan.service_model import ServicesPlan
from testbed.rulepath import trace_path
from testbed.rules import Packet, merge, trace
from testbed.rules.model import Drop
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .test_netpol_tracer import random_flow, random_world

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOPOLOGIES = {"iptables": "topologies/three-nodes.yaml", "nftables": "topologies/three-nodes-nftables.yaml"}
NOBODY = (
    "apiVersion: v1\nkind: Service\nmetadata: {name: nobody}\nspec:\n  selector: {app: none}\n  ports: [{port: 80}]\n"
)


def load(mode: str, *manifests: str):
    files = [m if os.path.isabs(m) else os.path.join(ROOT, m) for m in manifests]
    cluster, m = load_topology(os.path.join(ROOT, TOPOLOGIES[mode])), load_manifests(files)
    plan = plan_cluster(cluster, m, seed=0)
    assert plan.kube_proxy_mode == mode
    return plan, World.from_plan(plan)


def hook(hop, name):
    (h,) = [h for h in hop.outcome.hooks if h.hook == name]
    return h


@pytest.mark.parametrize("mode", sorted(TOPOLOGIES))
def test_cluster_ip_is_dnated_on_the_clients_node_to_a_pod_on_another_node_and_allowed(mode):
    plan, world = load(mode, "manifests/services-demo.yaml")
    client = world.pod("client")
    web = [p for p in world.pods if p.name.startswith("web-")]
    pt = trace_path(plan, world, Flow("client", "svc/web", 80))
    assert pt.destination == plan.services.service("default", "web").cluster_ip
    assert pt.delivered and sum(b.probability for b in pt.branches) == 1
    assert {b.hops[-1].outcome.destination for b in pt.branches} == {f"{p.ip}:8080" for p in web}
    remote = [b for b in pt.branches if len(b.hops) == 2]
    assert len(remote) == sum(p.node != client.node for p in web) > 0
    for b in remote:
        first, second = b.hops
        assert first.node == client.node and first.outcome.verdict == "dnat" and b.probability == Fraction(1, 3)
        pre = hook(first, "prerouting")
        assert f"{second.packet.dst}:8080" in pre.decided_by  # the DNAT rule decided
        assert pre.steps[-1].matched and pre.steps[-1].rule.verdict.__class__.__name__ == "Dnat"
        assert second.node == world.endpoint(second.packet.dst).pod.node != client.node
        assert second.packet.src == client.ip and second.packet.entry == "underlay"  # pod IP kept
        assert second.outcome.verdict == "accept" and hook(second, "forward").accepted
        assert b.end.startswith("delivered to pod default/web-")


@pytest.mark.parametrize("mode", sorted(TOPOLOGIES))
def test_a_flow_dropped_by_a_network_policy_ends_at_the_policys_drop_rule(mode):
    plan, world = load(mode, "manifests/seed003-nginx.yaml", "manifests/seed003-access-nginx.yaml")
    nginx = next(p for p in world.pods if p.name.startswith("nginx-"))
    pt = trace_path(plan, world, Flow("busybox", nginx.full_name, 80))
    (branch,) = pt.branches
    assert not pt.delivered and branch.end == f"DROP on {nginx.node}"
    last = branch.hops[-1]
    assert last.node == nginx.node and last.outcome.verdict == "drop"
    assert [h.hook for h in last.outcome.hooks][-1] == "forward"  # nothing runs after the drop
    fwd = hook(last, "forward")
    assert fwd.decided_by.startswith("check-ingress[") and "no NetworkPolicy rule allows this flow" in fwd.decided_by
    final = fwd.steps[-1]
    assert final.matched and final.table == "testbed-netpol" and final.rule.verdict == Drop()
    assert decide(Flow("busybox", nginx.full_name, 80), world).allowed is False


@pytest.mark.parametrize("mode", sorted(TOPOLOGIES))
def test_node_port_from_outside_is_masqueraded_to_the_node(mode):
    plan, world = load(mode, "manifests/seed002-nodeport.yaml")
    (pod,) = [p for p in world.pods if p.name.startswith("myapp-")]
    node = next(n for n in plan.nodes if n.name != pod.node)
    pt = trace_path(plan, world, Flow("laptop", node.name, 30008))
    (branch,) = pt.branches
    assert pt.delivered and [h.node for h in branch.hops] == [node.name, pod.node]
    first, second = branch.hops
    assert first.outcome.endpoint == f"{pod.ip}:80" and first.outcome.masqueraded
    assert first.outcome.source == node.host_ip and second.packet.src == node.host_ip
    post = hook(first, "postrouting")
    assert "masquerade" in post.decided_by.lower() and post.steps[-1].matched


@pytest.mark.parametrize("mode", sorted(TOPOLOGIES))
def test_a_service_without_endpoints_is_rejected_on_the_clients_node(mode, tmp_path):
    extra = tmp_path / "nobody.yaml"
    extra.write_text(NOBODY)
    plan, world = load(mode, "manifests/seed002-nodeport.yaml", str(extra))
    (pod,) = [p for p in world.pods if p.name.startswith("myapp-")]
    pt = trace_path(plan, world, Flow(pod.full_name, "svc/default/nobody", 80))
    (branch,) = pt.branches
    assert not pt.delivered and branch.end == f"REJECT on {pod.node}" and len(branch.hops) == 1
    fwd = hook(branch.hops[0], "forward")
    assert (
        fwd.verdict == "reject" and fwd.steps[-1].matched and fwd.steps[-1].rule.verdict.__class__.__name__ == "Reject"
    )
    if mode == "nftables":  # the verdict map that sent it to reject-chain says so
        assert any(s.why.endswith("is in @no-endpoint-services") for s in fwd.steps)


def test_explain_trace_on_the_command_line(capsys):
    nginx_file, policy = "manifests/seed003-nginx.yaml", "manifests/seed003-access-nginx.yaml"
    plan, world = load("iptables", nginx_file)
    nginx = next(p.name for p in world.pods if p.name.startswith("nginx-"))
    topo = os.path.join(ROOT, TOPOLOGIES["iptables"])
    args = ["explain", topo, "-f", os.path.join(ROOT, nginx_file), "--from", "busybox", "--to", nginx, "--trace"]
    assert main(args + ["-f", os.path.join(ROOT, policy)]) == 3
    out = capsys.readouterr().out
    assert out.startswith(f"trace busybox -> {nginx} (")
    assert "testbed-netpol/check-ingress[1] counter drop" in out and "filter/FORWARD[0]" in out
    assert main(args) == 0 and ": DELIVERED\n" in capsys.readouterr().out
    assert (
        main(
            [
                "explain",
                topo,
                "-f",
                os.path.join(ROOT, nginx_file),
                "--from",
                "busybox",
                "--to",
                "svc/nosuch",
                "--trace",
            ]
        )
        == 2
    )
    assert "no Service with a ClusterIP called 'nosuch'" in capsys.readouterr().err


# -- property: kube-proxy's tables and the policy's, every hook, agree with the oracle ----------------

EMPTY = ServicesPlan(0, "10.96.0.0/12", None, (), ())


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(st.randoms(use_true_random=False), st.sampled_from(["iptables", "nftables"]))
def test_the_whole_node_path_gives_the_oracles_verdict(rng, mode):
    world = random_world(rng)
    policy = compile_cluster(world)
    nodes = {n.name: n for n in world.nodes}
    rulesets = {
        name: merge(name, build_ruleset(EMPTY, name, n.ips[0], "10.244.0.0/16", mode), policy[name])
        for name, n in nodes.items()
    }
    for _ in range(40):
        flow = random_flow(rng, world)
        src, dst = world.endpoint(flow.src), world.endpoint(flow.dst)
        if src.pod is None or dst.pod is None or src.pod.full_name == dst.pod.full_name:
            continue
        allowed = True
        for node, entry in ((src.pod.node, "pod"),) + (
            ((dst.pod.node, "underlay"),) if dst.pod.node != src.pod.node else ()
        ):
            t = trace(
                rulesets[node],
                Packet(src.ip, dst.ip, flow.port, flow.protocol, entry),
                pod_cidr=f"{nodes[node].ips[1].rsplit('.', 1)[0]}.0/24",
            )
            (outcome,) = t.outcomes
            allowed = allowed and outcome.verdict == "accept"
        assert allowed == decide(flow, world).allowed, f"{flow}\n{t.explain()}"
