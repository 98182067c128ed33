"""`testbed clean` and the stale-run sweep: remove the testbed's own objects, only those.

Part of emu/. Two sources of truth, used in order: the ledgers in /run/testbed/<tag>/
(what an instance recorded as it built), then a sweep by prefix for whatever a ledger may
have missed (a kill -9 between creating an object and recording it). What counts as ours:
network namespaces named tb-<tag>-..., processes running inside them, the agent processes
(`testbed.agent --tag <tag>`), Mininet shells named mininet:tb<tag>..., and root-namespace
links named tb<tag>... . Nothing else is touched: no `mn -c`, no killall by program name.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from dataclasses import dataclass, field

from .. import PREFIX
from .ledger import STATE_DIR, Ledger, all_tags, netns_prefix, pid_alive
from .runner import Runner

ETC_NETNS = "/etc/netns"
_TAGGED_NETNS = re.compile(rf"^{PREFIX}-([0-9a-f]{{4}})-")
_TAGGED_LINK = re.compile(rf"^{PREFIX}([0-9a-f]{{4}})[a-z]")
_MININET_SHELL = re.compile(rf"mininet:{PREFIX}([0-9a-f]{{4}})")
_AGENT = re.compile(r"testbed\.agent\b.*--tag\s+([0-9a-f]{4})\b")


@dataclass
class CleanReport:
    netns: list[str] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    state_dirs: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.netns or self.processes or self.links or self.state_dirs or self.files)

    def __str__(self) -> str:
        if self.empty():
            return "nothing to clean"
        return (f"removed {len(self.netns)} namespace(s), {len(self.processes)} process(es), "
                f"{len(self.links)} link(s), {len(self.state_dirs)} state folder(s), {len(self.files)} "
                "/etc/netns folder(s)")


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


def _live_tags() -> set[str]:
    """Tags whose owner process still runs: never touched by a stale sweep."""
    live = set()
    for tag in all_tags():
        ledger = Ledger.load(tag)
        if ledger is not None and pid_alive(ledger.owner):  # ours (this process) included
            live.add(tag)
    return live


def clean(runner: Runner, only_stale: bool = False, tag: str | None = None) -> CleanReport:
    """Remove testbed objects: every instance's, only dead owners' (`only_stale`), or one tag's."""
    report = CleanReport()
    spare = _live_tags() if only_stale else set()

    def ours(found: str | None) -> bool:
        if found is None:
            return False
        if tag is not None:
            return found == tag
        return found not in spare

    netns_list = runner.run(["ip", "netns", "list"], check=False).out.split()
    names = [n for n in netns_list if n.startswith(netns_prefix())]
    doomed_ns = [n for n in names if ours((_TAGGED_NETNS.match(n) or [None, None])[1])]

    # Processes: our agents and Mininet shells by command line, then anything inside our netns.
    victims: set[int] = set()
    for pid, cmd in _cmdlines().items():
        m = _AGENT.search(cmd) or _MININET_SHELL.search(cmd)
        if m and ours(m.group(1)) and pid != os.getpid():
            victims.add(pid)
    for name in doomed_ns:
        pids = runner.run(["ip", "netns", "pids", name], check=False).out.split()
        victims.update(int(p) for p in pids if p.isdigit() and int(p) != os.getpid())
    _kill(victims)
    report.processes = sorted(victims)

    if doomed_ns:
        runner.ip_batch([f"netns del {n}" for n in doomed_ns], check=False)
    report.netns = doomed_ns
    # Per-namespace files `ip netns exec` binds over /etc (e.g. a pod's resolv.conf).
    try:
        etc = sorted(os.listdir(ETC_NETNS))
    except FileNotFoundError:
        etc = []
    for name in etc:
        m = _TAGGED_NETNS.match(name)
        if m and ours(m.group(1)):
            shutil.rmtree(os.path.join(ETC_NETNS, name), ignore_errors=True)
            report.files.append(os.path.join(ETC_NETNS, name))

    links = runner.run(["ip", "-o", "link", "show"], check=False).out.splitlines()
    for line in links:
        parts = line.split(":", 2)
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        m = _TAGGED_LINK.match(name)
        if m and ours(m.group(1)):
            runner.run(["ip", "link", "del", name], check=False)
            report.links.append(name)

    for found in list(all_tags()):
        if ours(found):
            Ledger(tag=found, owner=0).remove()
            report.state_dirs.append(os.path.join(STATE_DIR, found))
    return report


def _kill(pids: set[int], grace: float = 2.0) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(pid_alive(p) and not _zombie(p) for p in pids):
        time.sleep(0.02)
    for pid in pids:
        if pid_alive(pid) and not _zombie(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
