"""kube-proxy's configuration with real packets in both modes (issue 19 item 4).

A KubeProxyConfiguration patch restricts NodePorts to the control plane's address and the
loopback (nodePortAddresses): the laptop reaches the NodePort there and is refused on the
worker's address (nothing listens on the port itself, so the node answers with a RST); the
control-plane node reaches its own NodePort on 127.0.0.1 in iptables mode (route_localnet=1,
as upstream sets it) and not in nftables mode, which has no localhost NodePorts.
"""

from __future__ import annotations

import errno
import socket
import textwrap

import pytest

from testbed.emu.cluster import EmulatedCluster
from testbed.netns import in_netns
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

TOPOLOGY = """\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes: [{{role: control-plane}}, {{role: worker}}]
networking: {{kubeProxyMode: {mode}}}
kubeadmConfigPatches:
  - |
    apiVersion: kubeproxy.config.k8s.io/v1alpha1
    kind: KubeProxyConfiguration
    nodePortAddresses: [192.168.1.2/32, 127.0.0.0/8]
---
apiVersion: testbed/v1alpha1
kind: TestbedConfig
underlay: {{subnet: 192.168.1.0/24}}
externalHosts: [{{name: laptop, ip: 192.168.1.10}}]
"""
APP = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: echo}
    spec:
      replicas: 2
      selector: {matchLabels: {app: echo}}
      template:
        metadata: {labels: {app: echo}}
        spec:
          containers: [{name: server, ports: [{name: http, containerPort: 8080}]}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: echo-np}
    spec:
      type: NodePort
      selector: {app: echo}
      ports: [{port: 80, targetPort: http, nodePort: 30080}]
    """
)


def connect(netns_path: str, ip: str, port: int) -> int:
    """0 when a TCP connection from the namespace is accepted, else the errno."""
    with in_netns(netns_path):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(2.0)
        return s.connect_ex((ip, port))
    finally:
        s.close()


@pytest.fixture(params=["iptables", "nftables"])
def cluster(request, tmp_path, no_leftovers):
    (tmp_path / "topology.yaml").write_text(TOPOLOGY.format(mode=request.param))
    (tmp_path / "app.yaml").write_text(APP)
    spec = load_topology(str(tmp_path / "topology.yaml"))
    plan = plan_cluster(spec, load_manifests([str(tmp_path / "app.yaml")]), seed=1)
    with EmulatedCluster(plan) as c:
        yield c


def test_node_port_addresses_and_localhost_node_ports(cluster):
    c = cluster
    mode = c.plan.kube_proxy_mode
    cp, worker = c.plan.nodes
    assert (cp.host_ip, worker.host_ip) == ("192.168.1.2", "192.168.1.3")
    laptop = c.netns_path(next(e.key for e in c.plan.externals if e.name == "laptop"))
    assert connect(laptop, cp.host_ip, 30080) == 0, "a nodePortAddresses address answers"
    assert connect(laptop, worker.host_ip, 30080) == errno.ECONNREFUSED, "outside nodePortAddresses: no NodePort"
    node = c.netns_path(cp.key)
    with in_netns(node), open("/proc/sys/net/ipv4/conf/all/route_localnet") as h:
        localnet = h.read().strip()
    if mode == "iptables":
        assert localnet == "1"
        assert connect(node, "127.0.0.1", 30080) == 0, "localhost NodePort in iptables mode"
    else:
        assert localnet == "0"
        assert connect(node, "127.0.0.1", 30080) == errno.ECONNREFUSED, "nftables mode has no localhost NodePorts"
