"""The IPv6 side of an underlay of several racks in a dual-stack topology (issue 15; spec/, pure).

Every rack (underlay subnet) gets an IPv6 segment beside its IPv4 one: its `cidrIPv6`, or by
default a twin that reads like the IPv4 network — its octets written as hextets after a prefix,
the first three for a /24 or shorter, all four for a longer one:

- a rack of the cluster: a ULA, `fd00:` + octets (192.168.2.0/24 -> fd00:192:168:2::/64, as the
  one-subnet underlay's default fd00:192:168:1::/64 reads 192.168.1.0/24);
- an `outside: true` subnet: IPv6's documentation range 2001:db8::/32 (RFC 3849), as
  203.0.113.0/24 is IPv4's (RFC 5737): 203.0.113.0/24 -> 2001:db8:203:0:113::/80.

Members keep their IPv4 host number in their rack's IPv6 segment (203.0.113.10 is
2001:db8:203:0:113::a), the underlay router takes the first address of each, as in IPv4. Two
disjoint IPv4 subnets give disjoint twins (the hextets are their network addresses' octets).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from ..errors import Problem
from .model import UnderlaySubnet

ULA_PREFIX = (0xFD00,)
DOC_PREFIX = (0x2001, 0x0DB8)  # RFC 3849, IPv6's documentation range
DOC_RANGE = ipaddress.IPv6Network("2001:db8::/32")


def twin(cidr: str, outside: bool) -> str:
    """The default IPv6 segment of an IPv4 underlay subnet (see the module); "" when `cidr` is
    not a valid IPv4 network (topology.py names it)."""
    try:
        net = ipaddress.IPv4Network(cidr)
    except ValueError:
        return ""
    octets = net.network_address.packed[: 3 if net.prefixlen <= 24 else 4]
    hextets = (DOC_PREFIX if outside else ULA_PREFIX) + tuple(int(str(o), 16) for o in octets)
    value = 0
    for h in hextets:
        value = (value << 16) | h
    length = 16 * len(hextets)
    return str(ipaddress.IPv6Network((value << (128 - length), length)))


def usable(net: ipaddress.IPv6Network) -> bool:
    """Not multicast, link-local, nor in ::/8 (unspecified, loopback, IPv4-mapped)."""
    return not (net.is_multicast or net.is_link_local or net.overlaps(ipaddress.IPv6Network("::/8")))


def first_segment(subnets: Sequence[UnderlaySubnet], default: str) -> str:
    """The first rack's IPv6 segment, the topology's underlay_subnet_v6 (`default` when it is not
    a usable IPv6 network: check_racks_v6 names it)."""
    try:
        net = ipaddress.ip_network(rack_cidrs_v6(subnets[:1])[0], strict=True)
    except ValueError:
        return default
    return str(net) if isinstance(net, ipaddress.IPv6Network) and usable(net) else default


def rack_cidrs_v6(subnets: Sequence[UnderlaySubnet]) -> tuple[str, ...]:
    """Each rack's IPv6 segment, in rack order: its cidrIPv6 or its twin."""
    return tuple(s.cidr_v6 or twin(s.cidr, s.outside) for s in subnets)


def check_racks_v6(file: str, subnets: Sequence[UnderlaySubnet], others: Sequence[tuple[str, str]]) -> list[Problem]:
    """Each rack's IPv6 segment: a valid IPv6 network, no special range, disjoint from the other
    racks' and from `others` ((field, CIDR): the IPv6 pod and Service subnets), room for the
    IPv4 host numbers its members keep. The first rack's, when usable, is also the topology's
    underlay_subnet_v6, which spec/dualstack.py's check_v6 checks against `others` already."""
    problems: list[Problem] = []
    seen: list[tuple[ipaddress.IPv6Network, str]] = []
    valid_others = []
    for other_field, c in others:
        try:
            valid_others.append((ipaddress.ip_network(c), other_field))
        except ValueError:
            continue  # check_v6 names it
    for i, (sub, cidr) in enumerate(zip(subnets, rack_cidrs_v6(subnets))):
        field = f"underlay.subnets[{sub.name}].cidrIPv6"
        if not cidr:
            continue  # no twin of an invalid IPv4 cidr: topology.py names that one
        try:
            net = ipaddress.ip_network(cidr, strict=True)
        except ValueError as exc:
            problems.append(Problem(file, field, f"{_cut(cidr)} is not a valid network: {exc}", "TestbedConfig"))
            continue
        if not isinstance(net, ipaddress.IPv6Network):
            problems.append(Problem(file, field, f"{_cut(cidr)} is not an IPv6 network", "TestbedConfig"))
            continue
        if not usable(net):
            problems.append(Problem(file, field, f"{net}: it cannot be given to interfaces or routed", "TestbedConfig"))
            continue
        try:
            v4_host_bits = 32 - ipaddress.IPv4Network(sub.cidr).prefixlen
        except ValueError:
            v4_host_bits = 0  # topology.py names the bad IPv4 cidr
        if 128 - net.prefixlen < v4_host_bits:
            problems.append(
                Problem(
                    file,
                    field,
                    f"{net} is too small for the host numbers of {sub.cidr} (at most /{128 - v4_host_bits})",
                    "TestbedConfig",
                )
            )
        for other, other_field in [*seen, *(valid_others if i else ())]:
            if net.overlaps(other):
                problems.append(Problem(file, field, f"{net} overlaps {other_field} {other}", "TestbedConfig"))
                break
        seen.append((net, field))
    return problems


def _cut(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")
