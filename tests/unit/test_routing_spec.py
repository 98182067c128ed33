"""Topology syntax of the routing modes and the multi-subnet underlay (spec/topology.py)."""

from __future__ import annotations

import pathlib

import pytest

from testbed.errors import SpecError
from testbed.spec.model import BgpOptions, UnderlaySubnet, VxlanOptions

REPO = pathlib.Path(__file__).resolve().parents[2]

KIND = """
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes: [{role: control-plane}, {role: worker}, {role: worker}, {role: worker}]
---
apiVersion: testbed/v1alpha1
kind: TestbedConfig
"""

RACKS = (
    KIND
    + """
underlay:
  subnets:
    - {name: rack1, cidr: 192.168.1.0/24}
    - {name: rack2, cidr: 192.168.2.0/24}
nodes:
  - {name: kind-worker2, rack: rack2}
  - {name: kind-worker3, rack: rack2}
"""
)


def _problems(topology, text: str) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        topology(text)
    return [(p.path, p.message) for p in info.value.problems]


def test_defaults_one_subnet_host_gw_no_router(topology):
    c = topology(KIND)
    assert c.routing == "host-gw" and c.underlay_subnets == ()
    assert c.subnets() == (UnderlaySubnet("underlay", "192.168.1.0/24", 2),)
    assert [c.rack_of(n) for n in c.nodes] == ["underlay"] * 4
    assert not c.needs_router()
    assert c.bgp == BgpOptions() and c.vxlan == VxlanOptions()


@pytest.mark.parametrize("mode", ["host-gw", "cloud-routes", "vxlan", "bgp"])
def test_every_mode_loads(topology, mode):
    c = topology(KIND + f"routing: {mode}\n")
    assert c.routing == mode
    assert c.needs_router() == (mode == "cloud-routes")


def test_racks_and_per_node_rack(topology):
    c = topology(RACKS + "routing: vxlan\n")
    assert [(s.name, s.cidr, s.first_host) for s in c.subnets()] == [
        ("rack1", "192.168.1.0/24", 2),
        ("rack2", "192.168.2.0/24", 2),
    ]
    assert c.underlay_subnet == "192.168.1.0/24"  # the first subnet stands for "the underlay"
    assert [c.rack_of(n) for n in c.nodes] == ["rack1", "rack1", "rack2", "rack2"]
    assert c.needs_router()


def test_bgp_and_vxlan_options(topology):
    c = topology(
        KIND + "routing: bgp\nbgp: {asNumber: 65001, topology: route-reflector, routeReflectors: [kind-worker]}\n"
    )
    assert c.bgp == BgpOptions(65001, "route-reflector", ("kind-worker",))
    assert not c.needs_router()
    assert topology(KIND + "routing: bgp\nbgp: {topology: top-of-rack}\n").needs_router()
    c = topology(KIND + "routing: vxlan\nvxlan: {vni: 42, port: 4789}\n")
    assert c.vxlan == VxlanOptions(42, 4789)


def test_options_of_another_mode_are_noted_not_refused(topology):
    c = topology(KIND + "routing: host-gw\nbgp: {asNumber: 65001}\nvxlan: {vni: 2}\n")
    assert "bgp: ignored, routing is host-gw" in c.notes and "vxlan: ignored, routing is host-gw" in c.notes


def test_existing_topologies_still_load_unchanged():
    from testbed.spec.topology import load_topology

    c = load_topology(str(REPO / "topologies" / "three-nodes.yaml"))
    assert (c.underlay_subnet, c.routing, c.underlay_subnets, c.needs_router()) == (
        "192.168.1.0/24",
        "host-gw",
        (),
        False,
    )


def test_every_routing_topology_loads():
    from testbed.spec.topology import load_topology

    files = sorted((REPO / "topologies").glob("routing-*.yaml"))
    assert len(files) == 8
    for f in files:
        c = load_topology(str(f))
        underlay, mode = f.stem.split("-", 2)[1:]
        assert c.routing == mode
        assert len(c.subnets()) == (2 if underlay == "racks" else 1)


@pytest.mark.parametrize(
    "text,expected",
    [
        (KIND + "routing: ipip\n", ("routing", "must be one of host-gw, cloud-routes, vxlan, bgp, got 'ipip'")),
        (
            KIND + "underlay: {subnet: 192.168.1.0/24, subnets: [{name: a, cidr: 192.168.2.0/24}]}\n",
            ("underlay", "give either subnet (one L2 segment) or subnets (racks joined by a router), not both"),
        ),
        (KIND + "underlay: {subnets: []}\n", ("underlay.subnets", "expected at least one subnet")),
        (KIND + "underlay: {subnets: [{name: Rack1, cidr: 192.168.1.0/24}]}\n", ("underlay.subnets[0].name", None)),
        (
            KIND + "underlay: {subnets: [{name: a, cidr: 192.168.1.0/24, gateway: 1}]}\n",
            ("underlay.subnets[0].gateway", "unknown field 'gateway'"),
        ),
        (
            RACKS.replace("rack: rack2}\n  - {name: kind-worker3", "rack: rack9}\n  - {name: kind-worker3"),
            ("nodes[kind-worker2].rack", "no underlay subnet named 'rack9' (subnets: rack1, rack2)"),
        ),
        (
            RACKS.replace("192.168.2.0/24", "192.168.1.128/25"),
            ("underlay.subnets[rack1].cidr", "192.168.1.0/24 overlaps underlay.subnets[rack2].cidr 192.168.1.128/25"),
        ),
        (
            RACKS.replace("192.168.2.0/24", "10.244.7.0/24"),
            ("networking.podSubnet", "10.244.0.0/16 overlaps underlay.subnets[rack2].cidr 10.244.7.0/24"),
        ),
        (
            RACKS.replace("192.168.2.0/24}", "192.168.2.0/24, firstHost: 1}"),
            (
                "underlay.subnets[rack2].firstHost",
                "the underlay router takes .1 of 192.168.2.0/24: nodes must start at .2 or later",
            ),
        ),
        (
            KIND + "routing: cloud-routes\nunderlay: {subnet: 192.168.1.0/24, firstHost: 1}\n",
            ("underlay.firstHost", "the underlay router takes .1 of 192.168.1.0/24: nodes must start at .2 or later"),
        ),
        (
            RACKS.replace("192.168.2.0/24", "192.168.2.0/30"),
            ("underlay.subnets[rack2].cidr", "192.168.2.0/30 has no room for 2 nodes from host .2"),
        ),
        (
            RACKS + "externalHosts: [{name: laptop, ip: 192.168.3.10}]\n",
            (
                "externalHosts[laptop].ip",
                "192.168.3.10 is not a host address of any underlay subnet (192.168.1.0/24, 192.168.2.0/24)",
            ),
        ),
        (
            RACKS + "externalHosts: [{name: laptop, ip: 192.168.1.10, rack: rack2}]\n",
            ("externalHosts[laptop].ip", "192.168.1.10 is not a host address of rack rack2's subnet 192.168.2.0/24"),
        ),
        (
            RACKS + "externalHosts: [{name: laptop, ip: 192.168.2.1}]\n",
            ("externalHosts[laptop].ip", "192.168.2.1 is already the address of the underlay router"),
        ),
        (
            RACKS + "externalHosts: [{name: laptop, rack: rack3}]\n",
            ("externalHosts[laptop].rack", "no underlay subnet named 'rack3' (subnets: rack1, rack2)"),
        ),
        (
            RACKS + "externalHosts: [{name: router}]\n",
            ("externalHosts[router].name", "the name 'router' is the underlay router's"),
        ),
        (
            KIND + "routing: bgp\nbgp: {topology: spine-leaf}\n",
            ("bgp.topology", "must be one of full-mesh, route-reflector, top-of-rack, got 'spine-leaf'"),
        ),
        (
            KIND + "routing: bgp\nbgp: {routeReflectors: [kind-worker]}\n",
            ("bgp.routeReflectors", "routeReflectors needs topology: route-reflector"),
        ),
        (
            KIND + "routing: bgp\nbgp: {topology: route-reflector, routeReflectors: [kind-worker9]}\n",
            (
                "bgp.routeReflectors[0]",
                "no node named 'kind-worker9' (nodes: kind-control-plane, kind-worker, kind-worker2, kind-worker3)",
            ),
        ),
        (KIND + "routing: bgp\nbgp: {asNumber: 0}\n", ("bgp.asNumber", "0 is out of range [1, 4294967295]")),
        (KIND + "routing: vxlan\nvxlan: {port: 70000}\n", ("vxlan.port", "70000 is out of range [1, 65535]")),
    ],
)
def test_bad_routing_topologies(topology, text, expected):
    problems = _problems(topology, text)
    path, message = expected
    hits = [p for p in problems if p[0] == path and (message is None or p[1] == message)]
    assert hits, problems


def test_routing_compare_experiments_load_and_share_their_steps():
    from testbed.experiment.load import load_experiment

    files = sorted((REPO / "experiments").glob("routing-compare-*.yaml"))
    assert len(files) == 8
    steps = {}
    for f in files:
        exp = load_experiment(str(f))
        underlay, mode = f.stem.split("-", 3)[2:]
        assert exp.topology == str(REPO / "topologies" / f"routing-{underlay}-{mode}.yaml")
        assert exp.manifests == (str(REPO / "manifests" / "routing-echo.yaml"),)
        steps[f.stem] = [s.name for s in exp.steps]
    full = [
        "same-rack",
        "cross-rack-tcp",
        "cross-rack-udp",
        "cross-rack-nodes",
        "cross-rack-sctp",
        "latency",
        "throughput",
    ]
    for name, names in steps.items():
        # host-gw across racks leaves out what cannot be asserted there (SCTP's outcome varies)
        assert names == ([s for s in full if s != "cross-rack-sctp"] if name.endswith("racks-host-gw") else full)
