"""Pod networking (issue 13): hostNetwork, hostPort, dnsPolicy/dnsConfig, hostAliases.

spec/podnet.py's checks (the API server's), plan/podnet.py's placement (kube-scheduler's
NodePorts filter), addressing, resolv.conf and /etc/hosts (the kubelet's), the policy world
(hostNetwork pods are their node), and rules/portmap.py's rules in both backends, followed
through the rule tracer.
"""

from __future__ import annotations

import dataclasses

import pytest

from testbed.errors import SpecError
from testbed.plan.pod import PodDnsPlan
from testbed.plan.podnet import hosts_file, resolv_conf, spec_fields
from testbed.rules import portmap
from testbed.rules.packet import Packet
from testbed.rules.tracer import trace

TOPOLOGY = """
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes: [{role: control-plane}, {role: worker}, {role: worker}]
networking: {kubeProxyMode: %s}
"""


def pod(name: str, spec: str, labels: str = "{}") -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {labels}}}
spec:
{spec}
"""


HOSTNET = pod(
    "metrics",
    """  hostNetwork: true
  nodeName: kind-worker
  containers: [{name: exporter, ports: [{name: metrics, containerPort: 9100}]}]""",
    "{app: metrics}",
)
HOSTPORT = pod(
    "web",
    """  nodeName: kind-worker2
  containers: [{name: nginx, ports: [{containerPort: 80, hostPort: 8080}]}]""",
)


def _error(manifests, text: str) -> str:
    with pytest.raises(SpecError) as info:
        manifests(text)
    return str(info.value)


# -- spec ------------------------------------------------------------------------------------------


def test_a_host_network_pods_container_ports_are_host_ports(manifests):
    m = manifests(HOSTNET)
    (port,) = m.pods[0].template.containers[0].ports
    assert m.pods[0].template.host_network
    assert (port.container_port, port.host_port) == (9100, 9100)  # the API server's defaulting


@pytest.mark.parametrize(
    "spec,message",
    [
        (
            "  hostNetwork: true\n  containers: [{name: a, ports: [{containerPort: 80, hostPort: 81}]}]",
            "spec.containers[0].ports[0].containerPort: must match `hostPort` when `hostNetwork` is true",
        ),
        (
            "  containers: [{name: a, ports: [{containerPort: 80, hostPort: 70000}]}]",
            "spec.containers[0].ports[0].hostPort: 70000 is out of range",
        ),
        (
            "  containers: [{name: a, ports: [{containerPort: 80, hostPort: 8080, hostIP: nowhere}]}]",
            "spec.containers[0].ports[0].hostIP: 'nowhere': must be a valid IP address",
        ),
        (
            "  containers: [{name: a, ports: [{containerPort: 80, hostPort: 8080}, {containerPort: 81, hostPort: 8080}]}]",
            "spec.containers[0].ports[1].hostPort: Duplicate value: tcp/8080",
        ),
        ("  dnsPolicy: ClusterLast\n  containers: [{name: a}]", "spec.dnsPolicy: Unsupported value: 'ClusterLast'"),
        (
            "  dnsPolicy: None\n  containers: [{name: a}]",
            "spec.dnsConfig: must provide `dnsConfig` when `dnsPolicy` is None",
        ),
        (
            "  dnsPolicy: None\n  dnsConfig: {searches: [a.b]}\n  containers: [{name: a}]",
            "spec.dnsConfig.nameservers: must provide at least one DNS nameserver when `dnsPolicy` is None",
        ),
        (
            "  dnsConfig: {nameservers: [1.1.1.1, 1.1.1.2, 1.1.1.3, 1.1.1.4]}\n  containers: [{name: a}]",
            "spec.dnsConfig.nameservers: must not have more than 3 nameservers",
        ),
        (
            "  dnsConfig: {nameservers: [dns.example]}\n  containers: [{name: a}]",
            "spec.dnsConfig.nameservers[0]: 'dns.example': must be a valid IP address",
        ),
        ("  dnsConfig: {searches: [Not_A_Domain]}\n  containers: [{name: a}]", "spec.dnsConfig.searches[0]"),
        ("  dnsConfig: {options: [{value: '2'}]}\n  containers: [{name: a}]", "spec.dnsConfig.options[0].name"),
        ("  dnsConfig: {servers: [1.1.1.1]}\n  containers: [{name: a}]", "spec.dnsConfig.servers: unknown field"),
        (
            "  hostAliases: [{ip: 300.1.1.1, hostnames: [a]}]\n  containers: [{name: a}]",
            "spec.hostAliases[0].ip: '300.1.1.1': must be a valid IP address",
        ),
        (
            "  hostAliases: [{ip: 10.1.1.1, hostnames: [UPPER]}]\n  containers: [{name: a}]",
            "spec.hostAliases[0].hostnames[0]",
        ),
    ],
)
def test_bad_pod_network_fields_are_refused_with_the_field(manifests, spec, message):
    assert message in _error(manifests, pod("p", spec))


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  selector: {matchLabels: {app: d}}
  template:
    metadata: {labels: {app: d}}
    spec:
      %s
      containers: [{name: a, ports: [{containerPort: 80}]}]
"""


def test_dns_fields_are_decoded_in_deployments_too(manifests):
    fields = (
        "dnsPolicy: None\n"
        "      dnsConfig: {nameservers: [192.168.1.53], searches: [corp.example],"
        ' options: [{name: ndots, value: "1"}, {name: edns0}]}\n'
        "      hostAliases: [{ip: 10.1.2.3, hostnames: [foo.remote, bar.remote]}]"
    )
    t = manifests(DEPLOYMENT % fields).workloads[0].template
    assert t.dns_policy == "None"
    assert t.dns_config.options == (("ndots", "1"), ("edns0", None))
    assert t.host_aliases[0].hostnames == ("foo.remote", "bar.remote")


def test_templates_without_the_new_fields_keep_their_pod_template_hash(manifests):
    """pod-template-hash (hence every Deployment pod's name) ignores the new fields while unset."""
    from testbed.plan.naming import template_hash

    plain = template_hash(manifests(DEPLOYMENT % "").workloads[0].template)
    explicit_default = template_hash(manifests(DEPLOYMENT % "dnsPolicy: ClusterFirst").workloads[0].template)
    other = template_hash(manifests(DEPLOYMENT % "dnsPolicy: Default").workloads[0].template)
    assert plain == explicit_default != other
    assert plain == "885c78b8"  # the hash before the fields existed (main at 81f60ce)


# -- plan: addressing, scheduling, Services, policies ----------------------------------------------


def test_a_host_network_pod_has_its_nodes_host_ip_and_takes_no_pod_address(plan_of):
    plan = plan_of(TOPOLOGY % "iptables", HOSTNET, pod("b", "  nodeName: kind-worker\n  containers: [{name: a}]"))
    metrics, b = plan.find_pod("metrics"), plan.find_pod("b")
    assert metrics.host_network and metrics.ip == plan.node("kind-worker").host_ip == "192.168.1.3"
    assert b.ip == "10.244.1.2"  # the first address of the node's CIDR is still free for b


def test_a_service_selecting_a_host_network_pod_has_the_node_ip_as_endpoint(plan_of):
    svc = """
apiVersion: v1
kind: Service
metadata: {name: metrics}
spec: {selector: {app: metrics}, ports: [{port: 9100, targetPort: metrics}]}
"""
    plan = plan_of(TOPOLOGY % "iptables", HOSTNET, svc)
    (s,) = [s for s in plan.services.services if s.name == "metrics"]
    eps = [e for sl in plan.services.slices if sl.service == "metrics" for e in sl.endpoints]
    assert [(e.ip, e.node) for e in eps] == [("192.168.1.3", "kind-worker")]
    text = "\n".join(str(r) for _, _, r in plan.kube_proxy_rulesets["kind-worker2"].rules())
    assert "Dnat(ip='192.168.1.3', port=9100)" in text


def test_host_network_pods_are_not_pods_of_the_policy_world(plan_of):
    plan = plan_of(TOPOLOGY % "iptables", HOSTNET, HOSTPORT)
    assert [p.name for p in plan.world.pods] == ["web"]
    assert plan.world.endpoint_of_ip("192.168.1.3").node == "kind-worker"  # its traffic is the node's


def test_two_pods_asking_for_one_host_port_do_not_share_a_node(plan_of):
    rs = """
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: hp}
spec:
  replicas: 3
  selector: {matchLabels: {app: hp}}
  template:
    metadata: {labels: {app: hp}}
    spec:
      containers: [{name: a, ports: [{containerPort: 80, hostPort: 8080}]}]
"""
    plan = plan_of(TOPOLOGY % "iptables", rs)
    assert sorted(p.node for p in plan.pods) == ["kind-worker", "kind-worker2"]
    (pending,) = plan.pending
    assert pending.reason == (  # kube-scheduler's FitError, word for word
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 node(s) didn't have free ports for the requested pod ports. preemption: 0/3 nodes are available: "
        "1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
    )


def test_host_ports_on_different_host_ips_or_protocols_do_not_conflict(plan_of):
    a = pod(
        "a",
        "  nodeName: kind-worker\n  containers: [{name: a, ports: [{containerPort: 80, hostPort: 53, protocol: UDP}]}]",
    )
    b = pod("b", "  nodeName: kind-worker\n  containers: [{name: a, ports: [{containerPort: 80, hostPort: 53}]}]")
    c = pod(
        "c",
        "  nodeName: kind-worker\n  containers: [{name: a, ports: [{containerPort: 80, hostPort: 53, protocol: UDP}]}]",
    )
    plan = plan_of(TOPOLOGY % "iptables", a, b, c)
    assert [p.name for p in plan.pods] == ["a", "b"]
    assert plan.pending[0].reason == "node 'kind-worker' didn't have free ports for the requested pod ports"


def test_a_host_network_pod_conflicts_with_a_host_port_of_its_number(plan_of):
    other = pod(
        "other", "  nodeName: kind-worker\n  containers: [{name: a, ports: [{containerPort: 80, hostPort: 9100}]}]"
    )
    plan = plan_of(TOPOLOGY % "iptables", HOSTNET, other)
    assert [p.name for p in plan.pending] == ["other"]


# -- resolv.conf and /etc/hosts --------------------------------------------------------------------


def _pod(plan_of, spec: str, name: str = "p"):
    return plan_of(TOPOLOGY % "iptables", pod(name, spec)).find_pod(name)


def test_cluster_first_is_kubernetes_search_path_with_the_cluster_dns(plan_of):
    p = _pod(plan_of, "  containers: [{name: a}]")
    assert resolv_conf(p, "10.96.0.10") == (
        "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
    )


def test_dns_config_is_merged_into_cluster_first_as_the_kubelet_does(plan_of):
    p = _pod(
        plan_of,
        "  dnsConfig: {nameservers: [10.96.0.10, 192.168.1.53], searches: [svc.cluster.local, corp.example],"
        " options: [{name: ndots, value: '2'}, {name: edns0}]}\n  containers: [{name: a}]",
    )
    assert resolv_conf(p, "10.96.0.10") == (
        "search default.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
        "nameserver 10.96.0.10\nnameserver 192.168.1.53\noptions edns0 ndots:2\n"
    )


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("  dnsPolicy: Default\n", "search .\nnameserver 127.0.0.1\n"),
        ("  hostNetwork: true\n", "search .\nnameserver 127.0.0.1\n"),  # ClusterFirst falls back to Default
        (
            "  hostNetwork: true\n  dnsPolicy: ClusterFirstWithHostNet\n",
            "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
        ),
        (
            "  dnsPolicy: None\n  dnsConfig: {nameservers: [10.96.0.10], searches: [x.example], options: [{name: ndots, value: '1'}]}\n",
            "search x.example\nnameserver 10.96.0.10\noptions ndots:1\n",
        ),
        (
            "  dnsPolicy: Default\n  dnsConfig: {nameservers: [10.96.0.10]}\n",
            "search .\nnameserver 127.0.0.1\nnameserver 10.96.0.10\n",
        ),
    ],
)
def test_each_dns_policy_gives_the_kubelets_resolv_conf(plan_of, spec, expected):
    p = _pod(plan_of, spec + "  containers: [{name: a}]")
    assert resolv_conf(p, "10.96.0.10") == expected


def test_resolv_conf_is_cut_to_the_resolvers_limits(plan_of):
    p = _pod(plan_of, "  containers: [{name: a}]")
    many = dataclasses.replace(
        p,
        dns=PodDnsPlan("ClusterFirst", ("1.1.1.1", "1.1.1.2", "1.1.1.3"), tuple(f"s{i}.example" for i in range(40))),
    )
    text = resolv_conf(many, "10.96.0.10")
    assert text.count("nameserver") == 3 and "1.1.1.3" not in text
    assert len(text.splitlines()[0].split()) - 1 == 32


def test_hosts_file_is_the_kubelets_with_host_aliases(plan_of):
    p = _pod(plan_of, "  hostAliases: [{ip: 10.1.2.3, hostnames: [foo.remote, bar.remote]}]\n  containers: [{name: a}]")
    assert hosts_file(p, "192.168.1.3") == (
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
        f"{p.ip}\tp\n\n# Entries added by HostAliases.\n10.1.2.3\tfoo.remote\tbar.remote\n"
    )


def test_a_host_network_pods_hosts_file_is_its_nodes(plan_of):
    plan = plan_of(TOPOLOGY % "iptables", HOSTNET)
    text = hosts_file(plan.find_pod("metrics"), "192.168.1.3")
    assert text.startswith("# Kubernetes-managed hosts file (host network).\n127.0.0.1\tlocalhost\n")
    assert text.endswith("192.168.1.3\tkind-worker\n")


def test_the_api_view_shows_the_fields_as_the_api_server_stores_them(plan_of):
    plan = plan_of(TOPOLOGY % "iptables", HOSTNET)
    assert spec_fields(plan.find_pod("metrics")) == {"dnsPolicy": "ClusterFirst", "hostNetwork": True}


# -- portmap rules ---------------------------------------------------------------------------------


def test_portmap_iptables_rules_have_the_plugins_chains(plan_of):
    plan = plan_of(TOPOLOGY % "iptables", HOSTPORT, HOSTNET)
    assert set(plan.hostport_tables) == {"kind-worker2"}  # a hostNetwork pod binds its port itself
    web = plan.find_pod("web")
    table = plan.hostport_tables["kind-worker2"]
    text = portmap.render(table)
    chain = portmap.dn_chain(web)
    assert len(chain) == 28 and chain.startswith("CNI-DN-")
    cid = portmap.container_id(web)
    for line in [
        ":CNI-HOSTPORT-DNAT - [0:0]",
        f'-A CNI-HOSTPORT-DNAT -m tcp -p tcp -m comment --comment "dnat name: \\"kindnet\\" id: \\"{cid}\\"" --dport 8080 -j {chain}',
        f"-A {chain} -m tcp -p tcp --dport 8080 -s 10.244.2.0/24 -j CNI-HOSTPORT-SETMARK",
        f"-A {chain} -m tcp -p tcp --dport 8080 -s 127.0.0.1/32 -j CNI-HOSTPORT-SETMARK",
        f"-A {chain} -m tcp -p tcp --dport 8080 -j DNAT --to-destination {web.ip}:80",
        '-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --or-mark 0x2000',
        "-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE",
    ]:
        assert line in text.splitlines(), line
    assert portmap.render_bootstrap(table).splitlines() == [
        "*nat",
        "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
        "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
        '-I POSTROUTING 1 -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ',
        "COMMIT",
    ]


def test_a_pod_gone_leaves_its_chain_deleted(plan_of):
    plan = plan_of(TOPOLOGY % "iptables", HOSTPORT)
    before = plan.hostport_tables["kind-worker2"]
    empty = portmap.node_table((), "iptables")
    text = portmap.render(empty, before)
    chain = portmap.dn_chain(plan.find_pod("web"))
    assert f":{chain} - [0:0]" in text and f"-X {chain}" in text


def test_portmap_nftables_table_is_the_plugins(plan_of):
    hostip = pod(
        "pinned",
        "  nodeName: kind-worker2\n  containers: [{name: a, ports: [{containerPort: 53, hostPort: 53, hostIP: 192.168.1.4, protocol: UDP}]}]",
    )
    plan = plan_of(TOPOLOGY % "nftables", HOSTPORT, hostip)
    web, pinned = plan.find_pod("web"), plan.find_pod("pinned")
    text = portmap.render(plan.hostport_tables["kind-worker2"])
    t = "add rule ip cni_hostport"
    for line in [
        'add table ip cni_hostport { comment "CNI portmap plugin" ; }',
        "delete table ip cni_hostport",
        "add chain ip cni_hostport output { type nat hook output priority -100 ; }",
        f'{t} hostports tcp dport 8080 dnat to {web.ip}:80 comment "{portmap.container_id(web)}"',
        f'{t} hostip_hostports ip daddr 192.168.1.4 udp dport 53 dnat to {pinned.ip}:53 comment "{portmap.container_id(pinned)}"',
        f"{t} prerouting fib daddr type local jump hostports_all",
        f"{t} output fib daddr type local jump hostports_all",
        f"{t} hostports_all jump hostip_hostports",
        f'{t} masquerading ip saddr {web.ip} ip daddr {web.ip} masquerade comment "{portmap.container_id(web)}"',
        f'{t} masquerading ip saddr 127.0.0.1 ip daddr {web.ip} masquerade comment "{portmap.container_id(web)}"',
    ]:
        assert line in text.splitlines(), line


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_the_laptop_keeps_its_address_through_a_host_port(plan_of, mode):
    plan = plan_of(TOPOLOGY % mode, HOSTPORT)
    web = plan.find_pod("web")
    rs = plan.rulesets["kind-worker2"]
    (o,) = trace(rs, Packet("192.168.1.10", "192.168.1.4", 8080, entry="underlay"), pod_cidr="10.244.2.0/24").outcomes
    assert (o.verdict, o.endpoint, o.masqueraded, o.source) == ("dnat", f"{web.ip}:80", False, "192.168.1.10")
    # not for this node: no DNAT (the plugin matches local destinations only)
    (o,) = trace(rs, Packet("10.244.1.2", "10.244.1.9", 8080, entry="underlay"), pod_cidr="10.244.2.0/24").outcomes
    assert o.verdict == "accept" and o.endpoint is None


def test_a_pod_of_the_same_node_is_masqueraded_by_the_iptables_backend_only(plan_of):
    """iptables marks every source in the pod's network (CNI-DN's `-s 10.244.2.0/24`); the
    nftables backend masquerades only a pod reaching itself."""
    for mode, masq in (("iptables", True), ("nftables", False)):
        plan = plan_of(TOPOLOGY % mode, HOSTPORT)
        rs = plan.rulesets["kind-worker2"]
        (o,) = trace(rs, Packet("10.244.2.9", "192.168.1.4", 8080, entry="pod"), pod_cidr="10.244.2.0/24").outcomes
        assert (o.verdict, o.masqueraded) == ("dnat", masq), mode
        web = plan.find_pod("web")
        (o,) = trace(rs, Packet(web.ip, "192.168.1.4", 8080, entry="pod"), pod_cidr="10.244.2.0/24").outcomes
        assert (o.verdict, o.masqueraded) == ("dnat", True), mode  # hairpin


def test_describe_pod_says_host_network_and_host_ports(plan_of):
    from testbed.views import describe_pod

    plan = plan_of(TOPOLOGY % "iptables", HOSTNET, HOSTPORT)
    text = describe_pod(plan, plan.find_pod("metrics"))
    assert "Network:      hostNetwork: the network namespace of kind-worker (192.168.1.3)" in text
    assert "Ports:  9100/TCP (metrics) -> host port 9100" in text
    assert "Ports:  80/TCP -> host port 8080" in describe_pod(plan, plan.find_pod("web"))


# -- experiments: `to: {hostPort: ...}` ------------------------------------------------------------


def _experiment(tmp_path, mode: str, to: str) -> str:
    import shutil

    from tests.conftest import REPO

    shutil.copy(REPO / "manifests" / "pod-networking.yaml", tmp_path / "app.yaml")
    (tmp_path / "topo.yaml").write_text(
        TOPOLOGY % mode + "---\napiVersion: testbed/v1alpha1\nkind: TestbedConfig\n"
        "externalHosts: [{name: laptop, ip: 192.168.1.10}]\n",
        encoding="utf-8",
    )
    path = tmp_path / "exp.yaml"
    path.write_text(
        f"""
apiVersion: testbed/v1alpha1
kind: Experiment
metadata: {{name: x}}
spec:
  topology: topo.yaml
  manifests: [app.yaml]
  steps:
    - name: s
      probes:
        - name: g
          from: {{pods: all}}
          to: {to}
""",
        encoding="utf-8",
    )
    return str(path)


@pytest.mark.parametrize("mode,neighbour", [("iptables", "gateway"), ("nftables", "own")])
def test_host_port_probes_expect_what_portmap_leaves(tmp_path, mode, neighbour):
    from testbed.experiment.expand import expand
    from testbed.experiment.load import load_experiment
    from testbed.plan.build import plan_cluster
    from testbed.spec.topology import load_topology
    from testbed.spec.workloads import load_manifests

    exp = load_experiment(_experiment(tmp_path, mode, "{hostPort: {names: [web-hostport]}}"))
    plan = plan_cluster(load_topology(exp.topology), load_manifests(exp.manifests), exp.seed)
    probes = expand(plan, exp.steps[0].probes[0])
    got = {p.src.name: (p.dst_ip, p.port, p.communication, p.expect_sources) for p in probes}
    gw = plan.node("kind-worker2").gateway
    assert got["client"] == ("192.168.1.4", 8080, "pod-to-pod (hostPort)", (plan.find_pod("client").ip,))
    assert got["web-hostport"][3] == (gw,)  # hairpin: masqueraded in both backends
    assert got["neighbour"][3] == ((gw,) if neighbour == "gateway" else (plan.find_pod("neighbour").ip,))
    assert "node-metrics" in got and got["node-metrics"][3] == ("192.168.1.3",)  # a hostNetwork sender is its node


def test_a_host_port_target_naming_no_pod_is_an_error(tmp_path):
    from testbed.experiment.load import load_experiment

    with pytest.raises(SpecError, match=r"to\.hostPort\.names\[0\]: no pod named 'web-typo'"):
        load_experiment(_experiment(tmp_path, "iptables", "{hostPort: {names: [web-typo]}}"))
    with pytest.raises(SpecError, match=r"sends no probe|nothing"):
        load_experiment(_experiment(tmp_path, "iptables", "{hostPort: {names: [client]}}"))  # no hostPort


def test_the_oracle_sees_host_port_probes_after_dnat_and_host_network_pods_as_nodes(tmp_path):
    from testbed.experiment.expand import expand
    from testbed.experiment.load import load_experiment
    from testbed.experiment.model import Endpoints, Expectation, PodSelection, ProbeGroup
    from testbed.plan.build import plan_cluster
    from testbed.spec.topology import load_topology
    from testbed.spec.workloads import load_manifests
    from tests.conftest import REPO

    exp = load_experiment(_experiment(tmp_path, "iptables", "{hostPort: {names: [web-hostport]}}"))
    deny = str(REPO / "manifests" / "pod-networking-deny.yaml")
    plan = plan_cluster(load_topology(exp.topology), load_manifests([*exp.manifests, deny]), exp.seed)
    oracle = Expectation("oracle", "any")
    to_port = ProbeGroup(
        "g", Endpoints(pods=PodSelection()), Endpoints(host_port=PodSelection(names=("web-hostport",))), expect=oracle
    )
    got = {p.src.name: p.expect_outcome for p in expand(plan, to_port, world=plan.world)}
    # masqueraded or not (neighbour, iptables backend), a sender keeps its identity for the policy;
    # the hostNetwork pod is its node, kind-worker, and another node's traffic is denied too
    assert got == {
        "client": "blocked",
        "neighbour": "blocked",
        "web-hostport": "connected",
        "node-metrics": "blocked",
    }
    to_hostnet = ProbeGroup(
        "h", Endpoints(hosts=("laptop",)), Endpoints(pods=PodSelection(names=("node-metrics",))), expect=oracle
    )
    assert [p.expect_outcome for p in expand(plan, to_hostnet, world=plan.world)] == ["connected"]
