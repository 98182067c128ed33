"""Load packet-filter rule sets into node namespaces, one atomic transaction per node.

Part of emu/. The pure core renders rule sets as text (kube-proxy's iptables-restore or
nftables script, whole or partial; the NetworkPolicy nftables table or its set updates); here
each is loaded with ONE `iptables-restore` or `nft -f` transaction per node — never one
command per rule — which both tools make atomic (a reader never sees half a rule set). nft
scripts go through libnftables in-process when it loads (Runner.nft); the nodes of a change are
loaded at once from one pool of threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

from .runner import Runner

MAX_LOADERS = 8  # nodes loaded at once: each load mostly waits on the kernel (or a process)


def iptables_restore(runner: Runner, netns: str, text: str) -> None:
    """`iptables-restore --noflush`: replaces the chains the text declares, keeps the others.
    Started inside the node's network namespace by the runner (Runner.run_in: no `ip netns exec`)."""
    runner.run_in(netns, ["iptables-restore", "--noflush", "--wait"], input=text)


def ip6tables_restore(runner: Runner, netns: str, text: str) -> None:
    """The same for IPv6 (kube-proxy's IPv6 proxier in a dual-stack cluster, emu/kubeproxy6.py)."""
    runner.run_in(netns, ["ip6tables-restore", "--noflush", "--wait"], input=text)


def nft_load(runner: Runner, netns: str, text: str) -> None:
    """`nft -f -` (in-process through libnftables when it loads: Runner.nft): one transaction."""
    runner.nft(netns, text)


def apply_per_node(runner: Runner, texts: Mapping[str, str], kind: str) -> None:
    """texts: node netns name -> rule text; kind: 'iptables' or 'nft'."""
    load = iptables_restore if kind == "iptables" else nft_load
    for netns, text in texts.items():
        if text.strip():
            load(runner, netns, text)


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _loaders() -> ThreadPoolExecutor:
    """One pool for the process's life: on a busy VM, starting 10 threads per change (each start
    waits until the new thread is scheduled) cost more than the loads themselves."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=MAX_LOADERS, thread_name_prefix="tb-load")
            # A signal inside submit(), between a worker's start and its registration in
            # concurrent.futures' exit list, leaves a worker that nothing wakes at exit, and the
            # interpreter waits for it forever (seen: a Ctrl-C during a run's first rule load).
            # Shutting the pool down before threads are joined wakes every worker by its queue.
            threading._register_atexit(_pool.shutdown)  # type: ignore[attr-defined]  # concurrent.futures uses it
        return _pool


def started(jobs: Iterable[Callable[[], None]]) -> list[Future[None]]:
    """Start each job in the loaders' pool as `jobs` yields it, and return without waiting: the
    caller waits for the futures (`concurrent.futures.wait`) and reads their results."""
    futures: list[Future[None]] = []
    try:
        for job in jobs:
            futures.append(_loaders().submit(job))
    except BaseException:  # a failure while yielding still waits for the jobs already started
        wait(futures)
        raise
    return futures


def in_parallel(jobs: Iterable[Callable[[], None]]) -> None:
    """Run each node's load at once (each is its own process or libnftables transaction in its
    own namespace, so their order does not matter); the first failure is raised after all ended.

    A job starts as soon as `jobs` yields it (a generator can render the next node's text while
    the first loads); a sequence of one runs in this thread."""
    if isinstance(jobs, Sequence) and len(jobs) <= 1:
        for job in jobs:
            job()
        return
    futures = []
    try:
        for job in jobs:
            futures.append(_loaders().submit(job))
    finally:  # a failure while yielding still waits for the loads already started
        wait(futures)
    for future in futures:
        future.result()
