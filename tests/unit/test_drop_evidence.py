"""Drop evidence, the pure parts: nflog messages, the log rules' prefixes, where a flow died."""

from __future__ import annotations

import ipaddress
import struct
import tempfile

from hypothesis import given
from hypothesis import strategies as st

from testbed.dropcheck import owner, parse_where, predicted
from testbed.rules.droplog import LOG_GROUP, RuleKey, key_of, locate, parse_prefix
from testbed.rules.model import Accept, Addr, Chain, Drop, Log, Proto, Reject, Rule, Ruleset, Table
from testbed.rules.render_iptables import render_restore
from testbed.rules.render_nft import nft_rule, render_commands
from testbed.wire import nflog

_names = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz-0123456789"), min_size=1, max_size=20)


def _ipv4(proto: int, src: str, dst: str, l4: bytes) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(l4),
        1,
        0,
        64,
        proto,
        0,
        *(ipaddress.IPv4Address(a).packed for a in (src, dst)),
    )
    return header + l4


@given(
    group=st.integers(0, 0xFFFF),
    prefix=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=63),
    hook=st.sampled_from(["prerouting", "input", "forward", "output", "postrouting"]),
    payload=st.binary(max_size=200),
    indev=st.integers(0, 2**32 - 1),
    outdev=st.integers(0, 2**32 - 1),
    count=st.integers(1, 4),
)
def test_decode_reads_back_what_the_kernel_format_encodes(group, prefix, hook, payload, indev, outdev, count):
    logged = nflog.Logged(group, prefix, hook, payload, indev, outdev)
    data = b"".join(nflog.encode_packet(logged, seq) for seq in range(count))
    packets, errors = nflog.decode(data)
    assert packets == [logged] * count and errors == []


@given(st.binary(max_size=300))
def test_decode_never_fails_otherwise_than_with_its_own_error(data):
    try:
        nflog.decode(data)
    except nflog.NflogError:
        pass


def test_acknowledgements_and_config_requests():
    ack = struct.pack("=IHHII", 36, nflog.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -16) + bytes(16)
    assert nflog.decode(ack) == ([], [16])  # EBUSY: another reader holds the group
    request = nflog.config(LOG_GROUP, 7, bind=True)
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", request)
    assert (length, kind, seq) == (len(request), nflog.MSG_CONFIG, 7) and flags & nflog.NLM_F_ACK
    assert struct.unpack_from("!H", request, 18)[0] == LOG_GROUP  # nfgenmsg res_id, big-endian
    mode = nflog.config(LOG_GROUP, 8, copy=128, qthresh=1, timeout=1)
    assert struct.pack("!IBx", 128, nflog.COPY_PACKET) in mode and len(mode) == 16 + 4 + 12 + 8 + 8


@given(
    proto=st.sampled_from([6, 17]),
    src=st.ip_addresses(v=4).map(str),
    dst=st.ip_addresses(v=4).map(str),
    sport=st.integers(0, 0xFFFF),
    dport=st.integers(0, 0xFFFF),
)
def test_flow_of_tcp_and_udp(proto, src, dst, sport, dport):
    flow = nflog.flow_of(_ipv4(proto, src, dst, struct.pack("!HH", sport, dport) + bytes(16)))
    assert flow == nflog.Flow(proto, src, dst, sport, dport)


def test_flow_of_sctp_init_and_icmp_echo():
    init = struct.pack("!HHII", 40000, 80, 0, 0) + struct.pack("!BBHI", 1, 0, 20, 0xCAFE)
    assert nflog.flow_of(_ipv4(132, "10.0.0.1", "10.0.0.2", init)).tag == 0xCAFE
    echo = struct.pack("!BBHHH", 8, 0, 0, 4242, 1)
    assert nflog.flow_of(_ipv4(1, "10.0.0.1", "10.0.0.2", echo)).sport == 4242
    assert nflog.flow_of(b"\x60" + bytes(40)) is None  # IPv6: not ours
    assert nflog.flow_of(_ipv4(6, "10.0.0.1", "10.0.0.2", b"\x00")) is None  # too short to say


@given(_names, _names, st.integers(0, 9999), st.sampled_from([Drop(), Reject()]))
def test_prefixes_name_the_rule_and_fit_nflog(table, chain, index, verdict):
    key = key_of(table, chain, index, Rule((), verdict))
    assert len(key.prefix()) <= 63
    assert parse_prefix(key.prefix()) == key
    assert parse_prefix("something else entirely") is None


def _ruleset() -> Ruleset:
    drop = Rule((Proto("tcp"), Addr("daddr", ("10.96.0.5",)), Log()), Reject())
    chain = Chain("KUBE-SERVICES", (Rule((Proto("udp"),), Accept()), drop))
    return Ruleset("n1", (Table("filter", (chain,), kind="iptables"),), "iptables")


def test_a_logged_rule_is_preceded_by_its_rate_limited_log_rule_with_the_same_matches():
    rs = _ruleset()
    lines = [line for line in render_restore(rs.tables).splitlines() if line.startswith("-A")]
    assert lines[1] == (
        "-A KUBE-SERVICES -m tcp -p tcp -d 10.96.0.5 -m limit --limit 5000/sec --limit-burst 2000 "
        f'-j NFLOG --nflog-group {LOG_GROUP} --nflog-prefix "tb reject filter KUBE-SERVICES 1"'
    )
    assert lines[2] == "-A KUBE-SERVICES -m tcp -p tcp -d 10.96.0.5 -j REJECT"
    nft = Table("t", (Chain("c", (Rule((Proto("tcp"), Log()), Drop()),)),), "inet")
    text = render_commands([nft])
    log_line = f'add rule inet t c meta l4proto tcp limit rate 5000/second burst 2000 packets log prefix "tb drop t c 0" group {LOG_GROUP}'
    assert log_line + "\nadd rule inet t c meta l4proto tcp drop" in text
    assert nft_rule(nft.chains[0].rules[0]) == "meta l4proto tcp drop"  # what the tracer prints


def test_locate_finds_the_rule_a_prefix_names():
    rs = _ruleset()
    found = locate(rs, parse_prefix("tb reject filter KUBE-SERVICES 1"))
    assert found is not None and found.chain == "KUBE-SERVICES" and isinstance(found.rule.verdict, Reject)
    assert locate(rs, RuleKey("reject", "filter", "KUBE-SERVICES", 0)) is None  # not a logged rule
    assert locate(rs, RuleKey("drop", "nat", "KUBE-SERVICES", 1)) is None


def test_where_a_truth_table_flow_dies_is_predicted_and_owned():
    from testbed.bench.probing import MODEL, TRUTH_POLICY, load_manifests, load_topology, plan_cluster
    from testbed.bench.workloads import THREE_NODES, write

    with tempfile.TemporaryDirectory() as folder:
        manifests = load_manifests([MODEL, write(folder, "policy.yaml", TRUTH_POLICY)])
        plan = plan_cluster(load_topology(THREE_NODES), manifests, seed=0)
    pods = {f"{p.namespace}/{p.name}": p for p in plan.pods}
    a, yb = pods["x/a"], pods["y/b"]
    where = predicted(plan, yb.ip, a.ip, 80, "TCP")
    assert where == (f"{a.node}/testbed-netpol/check-ingress[1] (drop)",)
    assert parse_where(where[0]).key == RuleKey("drop", "testbed-netpol", "check-ingress", 1)
    assert owner(plan, where[0], yb.ip, a.ip) == "no rule of x/a-from-x-tcp80 allows it (ingress)"
    assert predicted(plan, pods["x/b"].ip, a.ip, 80, "TCP") == ()  # allowed: no drop on its path
    assert parse_where("") is None and owner(plan, "") == ""


def test_a_logged_packet_finds_its_own_probe_even_when_tcp_shares_a_source_port():
    from testbed.traffic.droplog import FlowIndex

    index: FlowIndex[str] = FlowIndex()
    # TCP gives one source port to two connections of a pod: only the 5-tuple tells them apart.
    index.add("to-b", 6, "10.244.1.2", 40000, "10.244.2.2", 80)
    index.add("to-c", 6, "10.244.1.2", 40000, "10.244.2.3", 80)
    assert index.match(nflog.Flow(6, "10.244.1.2", "10.244.2.3", 40000, 80)) == "to-c"
    # Translated (a Service's address DNATed before the drop): one candidate only, or none.
    assert index.match(nflog.Flow(6, "10.244.1.2", "10.244.2.9", 40000, 80)) is None
    index.remove("to-b", 6, "10.244.1.2", 40000, "10.244.2.2", 80)
    index.remove("to-c", 6, "10.244.1.2", 40000, "10.244.2.3", 80)
    index.add("via-svc", 6, "10.244.1.2", 40001, "10.96.0.20", 80)
    assert index.match(nflog.Flow(6, "10.244.1.2", "10.244.2.9", 40001, 8080)) == "via-svc"
    assert index.match(nflog.Flow(17, "10.244.1.2", "10.244.2.9", 40001, 8080)) is None  # another protocol
    # SCTP: the INIT's tag, whatever the addresses.
    index.add("sctp", 132, "", 40002, "10.96.0.20", 80, 0xBEEF)
    assert index.match(nflog.Flow(132, "10.244.1.2", "10.244.2.9", 40002, 80, 0xBEEF)) == "sctp"
    assert index.match(nflog.Flow(132, "10.244.1.2", "10.244.2.9", 40002, 80, 0xBEEE)) is None
