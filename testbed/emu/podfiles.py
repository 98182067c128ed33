"""The files the kubelet writes for each pod's resolver: /etc/resolv.conf and /etc/hosts (emu/).

The text comes from the pure core (plan/podnet.py: dnsPolicy, dnsConfig, hostNetwork,
hostAliases); here it is written to /etc/netns/<pod netns>/, which `ip netns exec` binds over
/etc/resolv.conf and /etc/hosts for every command run in the pod. A file is rewritten only
when its text changed; the folder goes with the pod (emu/dns.py remove_resolv_confs).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from ..plan.model import Plan, PodPlan
from ..plan.podnet import hosts_file, resolv_conf
from ..plan.v6first import primary_node_ip, primary_pod_ip
from .dns import ETC_NETNS, remove_one
from .ledger import netns_name

Memo = dict[int, tuple[PodPlan, tuple[object, ...], tuple[str, str]]]


def pod_files(plan: Plan, tag: str, memo: Memo | None = None) -> dict[str, tuple[str, str]]:
    """netns name -> (resolv.conf, hosts) of every planned pod; the pod's and node's own line
    holds its primary address (IPv6 in an IPv6-first cluster, plan/v6first.py).

    `memo` (kept by the caller between syncs, refilled here with this plan's pods): a pod that
    is the same object as at the last call, with the same DNS server, addresses and node
    address, keeps its texts (a replan keeps the PodPlans of unchanged pods: a scale at 1,000
    pods computed 1,000 pairs of texts again, 4-8 ms of every change, issue 18)."""
    node_ip = {n.name: primary_node_ip(plan, n.name, n.host_ip) for n in plan.nodes}
    old = dict(memo) if memo is not None else {}
    out: dict[str, tuple[str, str]] = {}
    fresh: Memo = {}
    for p in plan.pods:
        ip = primary_pod_ip(plan, p.key, p.ip)
        inputs = (plan.dns_server, ip, node_ip.get(p.node, ""))
        found = old.get(id(p))
        if found is not None and found[0] is p and found[1] == inputs:
            texts = found[2]
        else:
            own = p if ip == p.ip else dataclasses.replace(p, ip=ip)
            texts = (resolv_conf(p, plan.dns_server), hosts_file(own, inputs[2]))
        fresh[id(p)] = (p, inputs, texts)  # the pod held: its id is not reused while memoized
        out[netns_name(tag, p.key)] = texts
    if memo is not None:
        memo.clear()
        memo.update(fresh)
    return out


def write_pod_files(
    files: Mapping[str, tuple[str, str]], written: Mapping[str, tuple[str, str]], root: str = ""
) -> None:
    """Write the files that are new or changed since `written`: into /etc/netns/<netns>/, or,
    given `root` (an instance's tmpfs, emu/podfs.py), into root/<netns>/ with /etc/netns/<netns>
    a symlink to it."""
    for netns, texts in files.items():
        if written.get(netns) == texts:
            continue
        folder = os.path.join(root or ETC_NETNS, netns)
        if not os.path.isdir(folder):
            os.makedirs(folder, exist_ok=True)
            if root:
                os.makedirs(ETC_NETNS, exist_ok=True)
                link = os.path.join(ETC_NETNS, netns)
                if os.path.lexists(link):  # a left-over of this instance's own earlier pod
                    remove_one(link)
                os.symlink(folder, link)
        for name, text in zip(("resolv.conf", "hosts"), texts):
            tmp = os.path.join(folder, f".{name}.tmp")
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, os.path.join(folder, name))  # a command starting now sees one whole file
