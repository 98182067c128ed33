"""Chain names are upstream's: checked against names kube-proxy printed on real clusters and in
its own tests (pkg/proxy/iptables and pkg/proxy/nftables proxier_test.go)."""

from __future__ import annotations

import pytest

from testbed.kubeproxy.common import iptables_chain, iptables_endpoint_chain, nft_chain_base, nft_endpoint_chain_base


@pytest.mark.parametrize(
    "port_name,protocol,chain",
    [
        ("default/kubernetes:https", "tcp", "KUBE-SVC-NPX46M4PTMTKRN6Y"),
        ("kube-system/kube-dns:dns", "udp", "KUBE-SVC-TCOU7JCQXEZGVUNU"),
        ("kube-system/kube-dns:dns-tcp", "tcp", "KUBE-SVC-ERIFXISQEP7F7OF4"),
        ("kube-system/kube-dns:metrics", "tcp", "KUBE-SVC-JD5MR3NA4I4DYORP"),
        ("default/nginx", "tcp", "KUBE-SVC-2CMXP7HKUVJN7L6M"),  # an unnamed port: ns/name only
    ],
)
def test_iptables_service_chain_names(port_name, protocol, chain):
    assert iptables_chain("KUBE-SVC", port_name, protocol) == chain


def test_iptables_policy_chains_share_the_hash():
    names = [iptables_chain(p, "ns2/svc2:p80", "tcp") for p in ("KUBE-SVC", "KUBE-SVL", "KUBE-EXT", "KUBE-FW")]
    assert {n.split("-", 2)[2] for n in names} == {"GNZBNJ2PO5MGZ6GT"}
    assert all(len(n) <= 28 for n in names)  # iptables' limit on chain names


def test_iptables_endpoint_chain_name():
    name = iptables_endpoint_chain("ns1/svc1:p80", "tcp", "10.180.0.1:80")
    assert name.startswith("KUBE-SEP-") and len(name) == 25
    assert name != iptables_endpoint_chain("ns1/svc1:p80", "tcp", "10.180.0.2:80")


def test_nft_chain_names():
    assert nft_chain_base("ns1", "svc1", "tcp", "p80") == "ULMVA6XW-ns1/svc1/tcp/p80"
    assert (
        nft_endpoint_chain_base("ns1", "svc1", "tcp", "p80", "10.180.0.1:80")
        == "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
    )
    assert (
        nft_endpoint_chain_base("ns4", "svc4", "tcp", "p80", "10.180.0.5:80")
        == "5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80"
    )
    assert nft_chain_base("ns2", "svc2", "tcp", "p80") == "42NFTM6N-ns2/svc2/tcp/p80"


def test_nft_names_fit_and_would_be_cut_to_the_limit():
    longest = nft_endpoint_chain_base("n" * 63, "s" * 63, "sctp", "p" * 63, "10.244.255.255:65535")
    assert len(longest) < 240  # IPv4 names never need cutting
    cut = nft_chain_base("n" * 300, "s", "tcp", "p")
    assert len(cut) == 240 and cut.endswith("...")
