"""Integration fixtures: root only, and a check that every test leaves the machine as it was."""

from __future__ import annotations

import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(reason="integration tests need root"))


def _foreign_tags() -> set[str]:
    """Instances owned by a live process outside this test session's process tree.

    Developers may run two emulations at once (their names never clash: each instance has
    its own tag); a test judges only what its own session created.
    """
    import json

    mine = {os.getpid()}
    foreign = set()
    for tag in os.listdir("/run/testbed") if os.path.isdir("/run/testbed") else []:
        try:
            owner = int(json.load(open(f"/run/testbed/{tag}/ledger.json"))["owner"])
        except (OSError, ValueError, KeyError):
            continue
        pid = owner
        while pid > 1 and pid not in mine:  # walk up the owner's ancestors
            try:
                pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pid = 0
        if pid not in mine and os.path.exists(f"/proc/{owner}"):
            foreign.add(tag)
    return foreign


def kernel_snapshot() -> dict[str, list[str]]:
    """What a testbed run may create: named namespaces, root links, state folders, processes.

    Only the testbed's own namespace names count (tb-<tag>-..., every one it creates): other
    work on a shared machine makes and deletes namespaces of its own. Neither do the objects of
    another live session's agent tests (tb-it<its pid>-..., test_agent_prober.py)."""
    snap = _raw_snapshot()
    snap["netns"] = [n for n in snap["netns"] if n.startswith("tb-")]
    foreign = _foreign_tags() | _foreign_sessions(snap)
    if not foreign:
        return snap

    return {k: [i for i in v if not _of_tags(i, foreign)] for k, v in snap.items()}


def _of_tags(item: str, tags: set[str]) -> bool:
    """Whether a snapshot item (a name, a command line, a path) belongs to one of `tags`."""
    return any(
        f"tb-{t}-" in item or f"tb{t}" in item or f"--tag {t}" in item or f"/run/testbed/{t}" in item or item == t
        for t in tags
    )


def _foreign_sessions(snap: dict[str, list[str]]) -> set[str]:
    """it<pid> tags (test_agent_prober.py's prefix) of live test sessions other than this one."""
    import re

    pids = {int(m) for items in snap.values() for item in items for m in re.findall(r"tb-it(\d+)-", item)}
    return {f"it{pid}" for pid in pids if pid != os.getpid() and os.path.exists(f"/proc/{pid}")}


def _raw_snapshot() -> dict[str, list[str]]:
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n")
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout.splitlines()
    procs = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as h:
                    cmd = h.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if (
                "testbed.agent" in cmd
                or "mininet:tb" in cmd
                or (
                    ("dnsmasq" in cmd or "bird" in cmd or "tcpdump" in cmd or "nginx" in cmd or "tables-restore" in cmd)
                    and "/run/testbed/" in cmd
                )
            ):
                procs.append(cmd.strip())
    # Instance folders only: /run/testbed/.sysctl.json is shared by all live instances
    # (test_lifecycle.py checks the sysctls themselves).
    state = (
        sorted(n for n in os.listdir("/run/testbed") if not n.startswith(".")) if os.path.isdir("/run/testbed") else []
    )
    etc = sorted(n for n in os.listdir("/etc/netns") if n.startswith("tb-")) if os.path.isdir("/etc/netns") else []
    with open("/proc/self/mounts", encoding="utf-8") as h:  # an instance's pod-files tmpfs (emu/podfs.py)
        mounts = sorted(line.split()[1] for line in h if line.split()[1].startswith("/run/testbed/"))
    return {
        "netns": sorted(n.split()[0] for n in netns if n.strip()),
        "links": sorted(line.split(":")[1].strip().split("@")[0] for line in links),
        "processes": sorted(procs),
        "state": state,
        "etc_netns": etc,
        "mounts": mounts,
    }


def swept(tag: str) -> bool:
    """Nothing of instance `tag` is left (its folder, its namespaces), whoever swept it: several
    instances may run at once, and each one's start-up sweep takes a dead owner's objects, so
    another instance may come before the sweep a test runs itself."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    return not os.path.exists(f"/run/testbed/{tag}") and not [n for n in netns if n.startswith(f"tb-{tag}-")]


def swept_here(report, tag: str) -> bool:
    """Whether this clean (an emu.cleanup.CleanReport) removed instance `tag` itself, rather
    than finding it already swept by another instance (which swept() then checks)."""
    if f"/run/testbed/{tag}" in report.state_dirs:
        return True
    assert swept(tag), f"instance {tag} is neither swept by this clean nor by another instance"
    return False


@pytest.fixture
def no_leftovers():
    """Assert that the test left no namespace, link, process or state folder behind: nothing
    that was not there before. What was there may go meanwhile: a dead instance that a stale
    sweep took (any instance's start-up sweep does, this test's own runs' too), or one still
    being created (no ledger yet, so not known as another session's) that then ran and ended."""
    before = kernel_snapshot()
    yield before
    after = kernel_snapshot()
    new = {k: [i for i in after[k] if i not in before[k]] for k in after}
    assert not any(new.values()), f"leftovers after the test: {new}"


@pytest.fixture
def clean_slate() -> None:
    """Sweep dead instances first (other sessions' crashed runs on this shared machine), so
    that the start-up sweep of the runs under test does not change what `no_leftovers` saw."""
    from testbed.emu.cleanup import clean
    from testbed.emu.runner import Runner

    clean(Runner(), only_stale=True)


@pytest.fixture
def testbed_cmd():
    """argv prefix that runs the CLI with this checkout's package."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    import sys

    return [sys.executable, "-m", "testbed"], env


def run_up(testbed_cmd, args: list[str], script: str, timeout: float = 120):
    """`testbed up THREE-NODES -q ARGS --script SCRIPT` as a user runs it: the finished process."""
    argv, env = testbed_cmd
    topology = os.path.join(ROOT, "topologies", "three-nodes.yaml")
    return subprocess.run(
        argv + ["up", topology, "-q", *args, "--script", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
