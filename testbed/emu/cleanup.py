"""`testbed clean`, the stale-run sweep and an instance's own final sweep: remove the
testbed's own objects, only those, and only when their owner is provably dead.

Part of emu/. Two sources of truth: the ledgers in /run/testbed/<tag>/ (who owns a tag, and
whether that owner lives: ledger.py), then a scan by prefix for the objects themselves
(a kill -9 between creating an object and recording it). What counts as ours: network
namespaces named tb-<tag>-..., processes running inside them, the agent processes
(`testbed.agent --tag <tag>`), Mininet shells named mininet:tb<tag>..., daemons whose command
line names a file in /run/testbed/<tag>/ (dnsmasq, bird, nginx), root-namespace links
named tb<tag>... and /etc/netns/tb-<tag>-* folders. Nothing else is touched: no `mn -c`, no
killall by program name.

Which tags a stale sweep takes, under the registry lock (so no instance is created while it
decides and removes): tags whose lock it can take and whose recorded owner is dead
(ledger.claim_dead), and objects of tags that have no folder at all (a live instance's
folder exists before its first object and outlives its last). What could not be removed is
written into the tag's ledger (`remains`) and the folder kept, so the next sweep retries.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import PREFIX
from . import ledger as ledgers
from . import limits
from .ledger import Ledger, all_tags, claim_dead, owner_alive, registry
from .netnsdel import delete_netns
from .runner import NETNS_DIR, Runner

ETC_NETNS = "/etc/netns"
_TAGGED_NETNS = re.compile(rf"^{PREFIX}-([0-9a-f]{{4}})-")
_TAGGED_LINK = re.compile(rf"^{PREFIX}([0-9a-f]{{4}})[a-z]")
_MININET_SHELL = re.compile(rf"mininet:{PREFIX}([0-9a-f]{{4}})")
_AGENT = re.compile(r"testbed\.agent\b.*--tag\s+([0-9a-f]{4})\b")
_DAEMON = re.compile(r"(?:^|[/ ])(?:dnsmasq|bird|nginx|tcpdump)\b")


@dataclass
class Found:
    """Testbed objects present on the machine (of the tags a scan was asked about)."""

    netns: list[str] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)  # object -> its tag

    def empty(self) -> bool:
        return not (self.netns or self.processes or self.links or self.files)

    def of(self, tag: str) -> Found:
        keep = [o for o, t in self.tags.items() if t == tag]
        return Found(
            [n for n in self.netns if n in keep],
            [p for p in self.processes if str(p) in keep],
            [n for n in self.links if n in keep],
            [f for f in self.files if f in keep],
            {o: tag for o in keep},
        )

    def as_dict(self) -> dict[str, list]:
        return {
            k: v
            for k, v in (
                ("netns", self.netns),
                ("processes", self.processes),
                ("links", self.links),
                ("files", self.files),
            )
            if v
        }

    def __str__(self) -> str:
        return (
            ", ".join(
                f"{len(v)} {k}"
                for k, v in (
                    ("namespace(s)", self.netns),
                    ("process(es)", self.processes),
                    ("link(s)", self.links),
                    ("/etc/netns folder(s)", self.files),
                )
                if v
            )
            or "nothing"
        )


@dataclass
class CleanReport(Found):
    """What a clean removed (the Found fields), and what it could not."""

    state_dirs: list[str] = field(default_factory=list)
    remaining: Found = field(default_factory=Found)  # what could not be removed
    sysctls: dict[str, int] = field(default_factory=dict)  # host-wide values restored

    def empty(self) -> bool:
        return super().empty() and not (self.state_dirs or self.sysctls)

    def __str__(self) -> str:  # type: ignore[override]
        if self.empty() and self.remaining.empty():
            return "nothing to clean"
        text = (
            f"removed {len(self.netns)} namespace(s), {len(self.processes)} process(es), "
            f"{len(self.links)} link(s), {len(self.state_dirs)} state folder(s), {len(self.files)} "
            "/etc/netns folder(s)"
        )
        if self.sysctls:
            text += "; restored " + ", ".join(f"{k}={v}" for k, v in sorted(self.sysctls.items()))
        if not self.remaining.empty():
            text += f"; could not remove {self.remaining} (recorded in the ledger; run it again)"
        return text


def _cmdlines() -> dict[int, str]:
    out: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                out[int(entry)] = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
    return out


# Read here rather than by `ip netns list`, `ip netns pids NAME` and `ip -o link show`, which
# read the same: a scan ran 7 processes (one per namespace of its tag), every teardown two scans
# and every build a stale sweep's (0.2-0.5 s of a 48-case suite's runs on the busy VM).
NETNS_RUN_DIR = "/run/netns"
SYS_NET = "/sys/class/net"


def _netns_names() -> list[str]:
    """`ip netns list`'s names: the entries of /run/netns, in the directory's order as ip has them."""
    try:
        return os.listdir(NETNS_RUN_DIR)
    except FileNotFoundError:
        return []


def _netns_pids(names: list[str]) -> dict[str, list[int]]:
    """`ip netns pids` of each name, in one pass over /proc: the processes whose network
    namespace is the one bound at /run/netns/<name> (the same device and inode)."""
    out: dict[str, list[int]] = {name: [] for name in names}
    bound: dict[tuple[int, int], list[str]] = {}
    for name in names:
        try:
            st = os.stat(os.path.join(NETNS_RUN_DIR, name))
        except OSError:
            continue
        bound.setdefault((st.st_dev, st.st_ino), []).append(name)
    if not bound:
        return out
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:  # gone meanwhile
            continue
        for name in bound.get((st.st_dev, st.st_ino), ()):
            out[name].append(int(entry))
    return out


def _link_names() -> list[str]:
    """`ip -o link show`'s names: this network namespace's devices, as its sysfs lists them."""
    try:
        return os.listdir(SYS_NET)
    except FileNotFoundError:
        return []


def _running(pid: int) -> bool:
    """Alive and not a zombie (a zombie holds nothing: it only waits to be reaped)."""
    return owner_alive(pid, None)


def scan(runner: Runner, ours: Callable[[str], bool], inside: bool = True) -> Found:
    """Every testbed object on the machine whose tag `ours` accepts (processes: running only;
    those inside its namespaces only if `inside`: a pass over /proc). `runner` runs nothing
    now (the names are read in-process); callers still pass the one they have."""
    found = Found()
    for name in _netns_names():
        m = _TAGGED_NETNS.match(name)
        if m and ours(m.group(1)):
            found.netns.append(name)
            found.tags[name] = m.group(1)
    me = os.getpid()
    procs: dict[int, str] = {}
    # A daemon started with a file of its instance's state folder (dnsmasq --addn-hosts, bird -c,
    # nginx -c) is found by that, even once its namespace has lost its name (a signal between
    # its start and its recording, then the pod's namespace deleted: `ip netns pids` is blind).
    state_ref = re.compile(re.escape(ledgers.STATE_DIR.rstrip("/")) + r"/([0-9a-f]{4})/")
    for pid, cmd in _cmdlines().items():
        m = _AGENT.search(cmd) or _MININET_SHELL.search(cmd) or (_DAEMON.search(cmd) and state_ref.search(cmd))
        if m and ours(m.group(1)) and pid != me:
            procs[pid] = m.group(1)
    for name, pids in _netns_pids(found.netns if inside else []).items():
        for pid in pids:
            if pid != me:
                procs.setdefault(pid, found.tags[name])
    for pid, tag in sorted(procs.items()):
        if _running(pid):
            found.processes.append(pid)
            found.tags[str(pid)] = tag
    try:
        etc = sorted(os.listdir(ETC_NETNS))
    except FileNotFoundError:
        etc = []
    for name in etc:  # per-namespace files `ip netns exec` binds over /etc (a pod's resolv.conf)
        m = _TAGGED_NETNS.match(name)
        if m and ours(m.group(1)):
            path = os.path.join(ETC_NETNS, name)
            found.files.append(path)
            found.tags[path] = m.group(1)
    for name in _link_names():
        m = _TAGGED_LINK.match(name)
        if m and ours(m.group(1)):
            found.links.append(name)
            found.tags[name] = m.group(1)
    return found


def _remove(runner: Runner, found: Found, report: CleanReport) -> None:
    _kill(set(found.processes))
    report.processes += found.processes
    if found.netns:  # `ip -force netns del` of each, in-process (netnsdel.py); a rescan says what stayed
        delete_netns(NETNS_DIR, found.netns)
    report.netns += found.netns
    for path in found.files:  # a folder, or a symlink into the instance's tmpfs (emu/podfs.py)
        if os.path.islink(path):
            os.unlink(path)  # the tmpfs goes with the instance folder (Ledger.remove)
        else:
            shutil.rmtree(path, ignore_errors=True)
    report.files += found.files
    for name in found.links:
        runner.run(["ip", "link", "del", name], check=False)
    report.links += found.links


def sweep_tag(runner: Runner, tag: str) -> tuple[CleanReport, Found]:
    """An owner's last sweep of its own tag: (what it removed, what is still there)."""
    report = CleanReport()
    _remove(runner, scan(runner, lambda t: t == tag), report)
    return report, scan(runner, lambda t: t == tag)


def clean(runner: Runner, only_stale: bool = False) -> CleanReport:
    """Remove testbed objects: every instance's, or only those whose owner is dead (`only_stale`).
    Host-wide sysctls go back to their original values once no live instance needs them."""
    report = CleanReport()
    with registry():
        claimed: dict[str, Ledger] = {}
        for tag in all_tags():
            ledger = claim_dead(tag)
            if ledger is None and not only_stale:  # `testbed clean`: live instances too
                ledger = Ledger.load(tag) or Ledger(tag=tag, owner=0)
            if ledger is not None:
                claimed[tag] = ledger
        try:
            # Objects whose tag has no folder: no live instance owns them (see the module doc);
            # judged after the scan, under the registry lock, so no new tag appears meanwhile.
            seen = scan(runner, lambda t: True, inside=False)
            orphans = {
                t
                for t in seen.tags.values()
                if t not in claimed and not os.path.isdir(os.path.join(ledgers.STATE_DIR, t))
            }
            doomed = set(claimed) | orphans
            left = Found()
            if doomed:
                _remove(runner, scan(runner, lambda t: t in doomed), report)
                left = scan(runner, lambda t: t in doomed)
            report.remaining = left
            for tag, ledger in claimed.items():
                mine = left.of(tag)
                if mine.empty():
                    ledger.remove()
                    report.state_dirs.append(os.path.join(ledgers.STATE_DIR, tag))
                else:  # keep the folder and say exactly what is left: the next sweep retries
                    ledger.remains = mine.as_dict()
                    try:
                        ledger.save()
                    except OSError:
                        pass
        finally:
            for ledger in claimed.values():
                ledger.release()
    report.sysctls = limits.restore(everyone=not only_stale)
    return report


def _kill(pids: set[int], grace: float = 2.0) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGCONT)  # one frozen by a fault (bird-down) acts on it at once
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_running(p) for p in pids):
        time.sleep(0.02)
    for pid in pids:
        if _running(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_running(p) for p in pids):
        time.sleep(0.02)  # SIGKILL is delivered asynchronously: wait until the kernel is done
