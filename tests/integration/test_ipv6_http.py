"""HTTP over IPv6 with real packets (issue 15): experiments/ipv6-http.yaml (single-stack IPv6)
and experiments/dual-stack-http.yaml (both families) in each kube-proxy mode. Every request is
a real HTTP/1.1 exchange with a pod's agent over an IPv6 socket, to `http://[addr]:port/`: pod
IPs, ClusterIPs, NodePorts and a DNS name resolved to its AAAA record; the agent reports the
address it saw (the sender's own, but behind a NodePort). Then the ingress controller (a real
nginx) reached over IPv6 on its LoadBalancer and NodePorts, routing by host and path as the
oracle says, proxying to IPv6 backends (every backend of an ipv6 cluster, a dual-stack
Service's in a dual one). And hostPorts at the nodes' IPv6 addresses: the portmap plugin's
IPv6 rules (ip6tables or table ip6 cni_hostport) DNAT them to the pod, masquerading what the
plugin masquerades in each backend. Each run leaves nothing behind."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from testbed.experiment.load import load_experiment
from testbed.experiment.run import run_experiment

from .conftest import ROOT


def _experiment(tmp_path, name: str, mode: str):
    """The shipped experiment, or a copy of it whose topology runs kube-proxy in `mode`."""
    path = os.path.join(ROOT, "experiments", name)
    exp = load_experiment(path)
    with open(exp.topology, encoding="utf-8") as f:
        topology = f.read()
    if f"kubeProxyMode: {mode}" in topology:
        return exp
    other = "nftables" if mode == "iptables" else "iptables"
    if f"kubeProxyMode: {other}" in topology:
        topology = topology.replace(f"kubeProxyMode: {other}", f"kubeProxyMode: {mode}")
    else:
        topology = topology.replace("networking:\n", f"networking:\n  kubeProxyMode: {mode}\n", 1)
    (tmp_path / "topology.yaml").write_text(topology)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = text.replace("../topologies/", "").replace("../manifests/", os.path.join(ROOT, "manifests") + "/")
    text = text.replace(f"topology: {os.path.basename(exp.topology)}", f"topology: {tmp_path / 'topology.yaml'}")
    copy = tmp_path / name
    copy.write_text(text)
    return load_experiment(str(copy))


def _hostports(rows: pd.DataFrame, mode: str) -> None:
    """The hostPort step over IPv6: every probe DNATed to the pod at a node's IPv6 address; the
    pod sees the sender, but a pod reaching itself (hairpin: cni0's address) and, in the
    iptables backend, a pod of its own /64 (the neighbour)."""
    hp = rows[rows["step"] == "hostport"]
    assert len(hp) >= 20 and (hp["outcome"] == "connected").all() and (hp["family"] == "IPv6").all()
    assert hp["answered_by"].eq("default/web-hostport").all() and hp["dst_ip"].str.startswith("fd00:192:168:1::").all()
    pods = hp[hp["group"].str.startswith("pods-to-hostport")]
    hairpin, neighbour = pods[pods["src_name"] == "web-hostport"], pods[pods["src_name"] == "neighbour"]
    gateway = hairpin["seen_src_ip"].iloc[0]
    assert gateway.endswith("::1") and (hairpin["seen_src_ip"] == gateway).all()
    if mode == "iptables":
        assert (neighbour["seen_src_ip"] == gateway).all()
    else:
        assert (neighbour["seen_src_ip"] == neighbour["src_ip"]).all()
    outside = hp[hp["group"].str.startswith("laptop-to-hostport") | hp["group"].str.startswith("http-to-hostport")]
    assert (outside["seen_src_ip"] == outside["src_ip"]).all() and set(outside["protocol"]) == {"TCP", "UDP"}
    assert hp[hp["group"].str.startswith("http-to-hostport")]["http_request"].str.match(r"^http://\[.*\]:8080/$").all()


def _rows(tmp_path, name: str, mode: str) -> pd.DataFrame:
    exp = _experiment(tmp_path, name, mode)
    results = tmp_path / "results"
    run_dir, passed = run_experiment(exp, str(results), progress=lambda _m: None)
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    bad = rows[~rows["outcome_ok"]]
    assert passed, bad[["group", "dst_ip", "port", "outcome", "error"]].to_string()
    with open(os.path.join(run_dir, "plan.json"), encoding="utf-8") as f:
        assert f'"kube_proxy_mode": "{mode}"' in f.read() or mode == "iptables"
    return rows


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_http_over_ipv6_only(tmp_path, mode, no_leftovers):
    rows = _rows(tmp_path, "ipv6-http.yaml", mode)
    assert (rows["family"] == "IPv6").all()
    _hostports(rows, mode)
    ingress = rows[rows["step"] == "ingress"]
    rows = rows[rows["step"] == "http"]
    assert (rows["method"] == "http").all()
    assert (rows["outcome"] == "connected").all() and rows["answered_by"].str.startswith("default/echo-").all()
    by = {g: x for g, x in rows.groupby("group")}
    for group in ("pod-ip", "cluster-ip"):
        urls = by[group]["http_request"]
        assert urls.str.match(r"^http://\[fd00:10:[0-9a-f:]+\](:8080)?/$").all(), urls.tolist()
    assert by["cluster-ip"]["dst_ip"].str.startswith("fd00:10:96::").all()
    # the name resolved to its AAAA record: the ClusterIP, and the server saw the client itself
    named = by["dns-name"]
    assert (named["dst_ip"] == by["cluster-ip"]["dst_ip"].iloc[0]).all()
    assert (named["seen_src_ip"] == named["src_ip"]).all()
    nodeport = by["node-port"]
    assert nodeport["http_request"].str.startswith("http://[fd00:192:168:1::").all()
    assert (nodeport["seen_src_ip"] != nodeport["src_ip"]).all()  # SNAT to a node, as in IPv4
    # the ingress over IPv6: its IPv6 LoadBalancer, nginx proxying to the backends' IPv6 addresses
    controller = ingress["seen_src_ip"].iloc[0]
    assert controller.startswith("fd00:10:244:") and (ingress["seen_src_ip"] == controller).all()
    assert (ingress["outcome_ok"]).all() and (ingress["expected_by"] == "oracle").all()
    assert set(ingress[ingress["group"] == "unknown-host"]["answered_by"].str.split("/").str[1].str[:20]) == {
        "default-http-backend"
    }
    assert (ingress[ingress["group"] == "https-coffee"]["port"] == 443).all()


@pytest.mark.parametrize("mode", ["nftables", "iptables"])
def test_http_over_both_families_of_a_dual_stack_cluster(tmp_path, mode, no_leftovers):
    rows = _rows(tmp_path, "dual-stack-http.yaml", mode)
    _hostports(rows, mode)
    ingress = rows[rows["step"] == "ingress"]
    rows = rows[rows["step"] == "http"]
    assert (rows["method"] == "http").all() and (rows["outcome"] == "connected").all()
    six = rows[rows["group"].str.endswith("-v6")]
    four = rows[rows["group"].str.endswith("-v4")]
    assert (six["family"] == "IPv6").all() and (four["family"] == "IPv4").all()
    assert six["dst_ip"].str.contains(":").all() and six["seen_src_ip"].str.contains(":").all()
    assert six["http_request"].str.startswith("http://[").sum() == len(six) - 3  # but the named ones
    named = six[six["group"] == "dns-name-v6"]  # asked for AAAA: the IPv6 ClusterIP
    assert named["dst_ip"].str.startswith("fd00:10:96::").all()
    assert set(named["dst_ip"]) == set(six[six["group"] == "cluster-ip-v6"]["dst_ip"])
    inside = six[six["group"] != "node-port-v6"]
    assert (inside["seen_src_ip"] == inside["src_ip"]).all()  # NAT-free over IPv6
    # the ingress reached over IPv6 (the controller's Service is PreferDualStack in a dual cluster)
    assert (ingress["outcome_ok"]).all() and len(ingress) >= 30
    v6 = ingress[ingress["family"] == "IPv6"]
    assert v6["dst_ip"].str.contains(":").all() and len(v6) > len(ingress) / 2
    # a dual-stack backend: nginx's upstream holds both families, and proxies to both
    dual = ingress[ingress["group"].str.startswith("dual-backend")]
    assert dual["seen_src_ip"].str.contains(":").any() and (~dual["seen_src_ip"].str.contains(":")).any()
    single = ingress[ingress["group"].str.startswith("coffee")]  # SingleStack backends: IPv4 only
    assert not single["seen_src_ip"].str.contains(":").any()
