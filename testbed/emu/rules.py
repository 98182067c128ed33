"""Load packet-filter rule sets into node namespaces, one atomic transaction per node.

Part of emu/. The pure core renders whole rule sets as text (kube-proxy's iptables-restore
or nftables script, the NetworkPolicy nftables table); here each is loaded with ONE
`iptables-restore` or `nft -f -` per node — never one command per rule — and re-applied
whole on every change, which both tools make atomic (a reader never sees half a rule set).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from .runner import Runner

MAX_LOADERS = 8  # nodes loaded at once: each load is a process that mostly waits on the kernel


def iptables_restore(runner: Runner, netns: str, text: str) -> None:
    """`iptables-restore --noflush`: replaces the chains the text declares, keeps the others."""
    runner.run(["ip", "netns", "exec", netns, "iptables-restore", "--noflush", "--wait"], input=text)


def nft_load(runner: Runner, netns: str, text: str) -> None:
    """`nft -f -` (in-process through libnftables when it loads: Runner.nft): one transaction."""
    runner.nft(netns, text)


def apply_per_node(runner: Runner, texts: Mapping[str, str], kind: str) -> None:
    """texts: node netns name -> rule text; kind: 'iptables' or 'nft'."""
    load = iptables_restore if kind == "iptables" else nft_load
    for netns, text in texts.items():
        if text.strip():
            load(runner, netns, text)


def in_parallel(jobs: Sequence[Callable[[], None]]) -> None:
    """Run each node's load at once (each is its own process and its own namespace's
    transaction, so their order does not matter); the first failure is raised after all ended."""
    if len(jobs) <= 1:
        for job in jobs:
            job()
        return
    with ThreadPoolExecutor(max_workers=min(MAX_LOADERS, len(jobs))) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()
