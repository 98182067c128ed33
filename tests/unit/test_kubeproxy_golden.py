"""kube-proxy rule texts, byte for byte, per node and mode, and their structure.

iptables-restore and nft cannot be run here (they need root and netfilter), so the texts are
checked structurally instead: every chain declared before use, every jump to a declared
chain or a real target, spreading probabilities 1/n ... 1, maps and sets declared before
their elements, quotes and braces balanced.
"""

from __future__ import annotations

import re
import shlex
from fractions import Fraction

import pytest

from testbed.kubeproxy import (
    build_ruleset,
    check,
    jump_rules,
    render,
    render_iptables_bootstrap,
    render_iptables_restore,
    render_nft,
)
from testbed.plan.services import update_endpoints

from ._golden import check_golden
from ._services import NODES, POD_SUBNET, world

EXT = {"iptables": "iptables", "nftables": "nft"}
IPT_TARGETS = {"ACCEPT", "DROP", "REJECT", "RETURN", "DNAT", "MARK", "MASQUERADE", "NFLOG"}


def ruleset(node: str, mode: str, plan=None):
    host_ip, _ = NODES[node]
    return build_ruleset(plan or world()[3], node, host_ip, POD_SUBNET, mode)


@pytest.mark.parametrize("mode", sorted(EXT))
@pytest.mark.parametrize("node", sorted(NODES))
def test_rules_match_golden(node, mode):
    rs = ruleset(node, mode)
    assert check(rs) == []
    check_golden(f"kubeproxy/{node}.{EXT[mode]}", render(rs))


def test_bootstrap_jumps_match_golden():
    check_golden("kubeproxy/bootstrap.iptables", render_iptables_bootstrap(ruleset("kind-worker", "iptables")))


def test_jump_rules_as_argv():
    jumps = jump_rules(ruleset("kind-worker", "iptables"))
    assert (
        "nat",
        "PREROUTING",
        ["-m", "comment", "--comment", '"kubernetes', "service", 'portals"', "-j", "KUBE-SERVICES"],
    ) in jumps
    assert len(jumps) == 12


# -- iptables-restore text -----------------------------------------------------------------------


def _ipt_tables(text: str) -> dict[str, list[str]]:
    tables: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        if line.startswith("*"):
            current = line[1:]
            tables[current] = []
        elif line == "COMMIT":
            current = None
        else:
            assert current is not None, f"line outside a table: {line}"
            tables[current].append(line)
    assert current is None, "last table not committed"
    return tables


@pytest.mark.parametrize("node", sorted(NODES))
def test_iptables_text_structure(node):
    text = render(ruleset(node, "iptables"))
    tables = _ipt_tables(text)
    assert list(tables) == ["filter", "nat"]
    for name, lines in tables.items():
        declared = [l[1:].split()[0] for l in lines if l.startswith(":")]
        assert len(declared) == len(set(declared))
        assert all(l.endswith(" - [0:0]") for l in lines if l.startswith(":"))
        referenced: set[str] = set()
        for line in (l for l in lines if l.startswith("-A ")):
            words = shlex.split(line)  # quotes balanced
            assert words[1] in declared, f"{name}: rule in undeclared chain: {line}"
            for flag in ("-j", "-g"):
                if flag in words:
                    target = words[words.index(flag) + 1]
                    assert target in declared or target in IPT_TARGETS, f"{name}: unknown target: {line}"
                    referenced.add(target)
        tops = {
            "KUBE-SERVICES",
            "KUBE-EXTERNAL-SERVICES",
            "KUBE-FORWARD",
            "KUBE-NODEPORTS",
            "KUBE-PROXY-FIREWALL",
            "KUBE-POSTROUTING",
        }
        assert set(declared) - referenced <= tops, "a service chain nobody jumps to"
    nat = tables["nat"]
    services = [l for l in nat if l.startswith("-A KUBE-SERVICES ")]
    assert "kubernetes service nodeports; NOTE: this must be the last rule in this chain" in services[-1]
    assert services[-1].endswith(f"-d {NODES[node][0]} -j KUBE-NODEPORTS")


@pytest.mark.parametrize("node", sorted(NODES))
def test_iptables_spreading_probabilities(node):
    nat = _ipt_tables(render(ruleset(node, "iptables")))["nat"]
    chains: dict[str, list[str]] = {}
    for line in nat:
        if line.startswith(("-A KUBE-SVC-", "-A KUBE-SVL-")) and "-j KUBE-SEP-" in line and "--rcheck" not in line:
            chains.setdefault(line.split()[1], []).append(line)
    assert chains
    for chain, lines in chains.items():
        n = len(lines)
        for i, line in enumerate(lines):
            m = re.search(r"--probability (\S+)", line)
            if i == n - 1:
                assert m is None, f"{chain}: the last endpoint must be a sure match"
            else:
                assert m and m.group(1) == f"{1 / (n - i):0.10f}", line


def test_iptables_no_endpoints_and_local_policy_filters():
    cp = _ipt_tables(render(ruleset("kind-control-plane", "iptables")))["filter"]
    assert any(
        l.startswith('-A KUBE-SERVICES -m comment --comment "default/nobody has no endpoints"')
        and l.endswith("-j REJECT")
        for l in cp
    )
    # web-lb is Local and kind-control-plane runs none of its pods: external traffic is dropped
    # unless the EXT chain short-circuited it (pods, the node itself).
    drops = [l for l in cp if "default/web-lb has no local endpoints" in l]
    assert any("-d 192.168.1.200 --dport 80 -j DROP" in l for l in drops)
    assert any("-m addrtype --dst-type LOCAL" in l and l.endswith("-j DROP") for l in drops)
    worker = _ipt_tables(render(ruleset("kind-worker", "iptables")))["filter"]
    assert not any("web-lb has no" in l for l in worker)
    assert any("default/web-lb health check node port" in l and l.endswith("-j ACCEPT") for l in worker)


def test_headless_and_external_name_services_have_no_rules():
    for mode in EXT:
        text = render(ruleset("kind-worker", mode))
        assert "web-headless" not in text and "default/db" not in text


def test_iptables_stale_chains_are_deleted():
    _, _, pods, plan = world()
    before = ruleset("kind-worker", "iptables")
    after = ruleset("kind-worker", "iptables", update_endpoints(plan, [p for p in pods if p.name != "web-canary"]))
    text = render_iptables_restore(after, previous=before)
    gone = set(before.chain_names("nat")) - set(after.chain_names("nat"))
    assert gone and all(name.startswith("KUBE-SEP-") for name in gone)
    for name in gone:
        assert f":{name} - [0:0]" in text and f"-X {name}" in text
    assert text.index("-X ") > text.index("*nat")
    assert render_iptables_restore(after, previous=after) == render_iptables_restore(after)


# -- nft text -----------------------------------------------------------------------------------


@pytest.mark.parametrize("node", sorted(NODES))
def test_nft_text_structure(node):
    text = render_nft(ruleset(node, "nftables"))
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    assert lines[:3] == [
        'add table ip kube-proxy { comment "rules for kube-proxy" ; }',
        "delete table ip kube-proxy",
        'add table ip kube-proxy { comment "rules for kube-proxy" ; }',
    ]
    chains: set[str] = set()
    containers: set[str] = set()
    for line in lines[3:]:
        assert line.count("{") == line.count("}") and line.count('"') % 2 == 0, line
        words = line.split()
        kind = words[1]
        assert words[2:4] == ["ip", "kube-proxy"], line
        if kind == "chain":
            chains.add(words[4])
        elif kind in ("set", "map"):
            containers.add(words[4])
        elif kind == "rule":
            assert words[4] in chains, f"rule before its chain: {line}"
        elif kind == "element":
            assert words[4] in containers, f"element before its map: {line}"
        else:
            pytest.fail(f"unexpected command {line}")
        for target in re.findall(r"(?:jump|goto) (\S+)", line):
            assert target in chains, f"reference to a chain not yet declared: {line}"
        for name in re.findall(r"@([\w./-]+)", line):
            assert name in containers, f"reference to a set or map not yet declared: {line}"
        m = re.search(r"numgen random mod (\d+) vmap \{ (.*) \}", line)
        if m:
            assert len(m.group(2).split(" , ")) == int(m.group(1))
    for name in chains:
        assert re.fullmatch(r"[A-Za-z_.][A-Za-z0-9_./-]*", name) and len(name) <= 256, name


def test_nft_services_without_endpoints_go_to_the_reject_chain():
    text = render_nft(ruleset("kind-worker", "nftables"))
    plan = world()[3]
    ip = plan.service("default", "nobody").cluster_ip
    assert (
        f'add element ip kube-proxy no-endpoint-services {{ {ip} . tcp . 80 comment "default/nobody" : goto reject-chain }}'
        in text
    )


def test_texts_are_idempotent_and_deterministic():
    for mode in EXT:
        assert render(ruleset("kind-worker2", mode)) == render(ruleset("kind-worker2", mode))


def test_probabilities_of_iptables_and_nft_agree():
    """The statistic chain 1/n, 1/(n-1) ... gives every endpoint 1/n, like numgen mod n."""
    for n in range(1, 8):
        left, shares = Fraction(1), []
        for i in range(n):
            p = Fraction(1, n - i)
            shares.append(left * p)
            left *= 1 - p
        assert shares == [Fraction(1, n)] * n and left == 0
