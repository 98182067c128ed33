"""Lifecycle rules checked without root: owner liveness (pid + start time, zombies), tag
folders and their locks, the stale sweep against instances created while it runs, the shared
sysctl record, the signal shield and unique results folders (issue 11, items 1, 2, 4, 12, 13)."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import threading
import time

import pytest

from testbed.emu import cleanup, limits, signals
from testbed.emu import ledger as ledgers
from testbed.emu.ledger import Ledger, claim_dead, owner_alive, process_start
from testbed.emu.runner import RecordingRunner
from testbed.experiment.results import discarded_if_empty, unique_run_dir


@pytest.fixture
def state(tmp_path, monkeypatch):
    """A private /run/testbed and /proc/sys for the neighbour thresholds."""
    monkeypatch.setattr(ledgers, "STATE_DIR", str(tmp_path / "state"))
    sysdir = tmp_path / "sys" / "net/ipv4/neigh/default"
    sysdir.mkdir(parents=True)
    for n, v in ((1, 128), (2, 512), (3, 1024)):
        (sysdir / f"gc_thresh{n}").write_text(f"{v}\n")
    monkeypatch.setattr(limits, "PROC_SYS", str(tmp_path / "sys"))
    # Never judge the machine's real testbed processes, namespaces, links or /etc/netns from a
    # unit test: with a private STATE_DIR every live instance's tag has no folder here, so a sweep
    # that read the real /run/netns took them for orphans and killed their daemons (seen as
    # other instances' dnsmasq getting SIGTERM while the unit tests ran).
    monkeypatch.setattr(cleanup, "_cmdlines", lambda: {})
    monkeypatch.setattr(cleanup, "ETC_NETNS", str(tmp_path / "etc-netns"))
    monkeypatch.setattr(cleanup, "NETNS_RUN_DIR", str(tmp_path / "netns"))
    monkeypatch.setattr(cleanup, "SYS_NET", str(tmp_path / "sys-class-net"))
    return tmp_path


def test_the_sweeps_of_these_tests_see_only_their_private_machine(state):
    """What the fixture seals: a scan reads the private folders, never the real machine's."""
    (state / "netns").mkdir()
    (state / "netns" / "tb-abcd-n0").write_text("")
    (state / "sys-class-net").mkdir()
    (state / "sys-class-net" / "tbabcdx").mkdir()
    found = cleanup.scan(RecordingRunner(), lambda t: True)
    assert found.netns == ["tb-abcd-n0"] and found.links == ["tbabcdx"] and found.processes == []


def _zombie() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # wait until it has exited (unreaped: a zombie)
        with open(f"/proc/{pid}/stat") as h:
            if h.read().rsplit(")", 1)[1].split()[0] == "Z":
                return pid
        time.sleep(0.005)
    raise AssertionError("the child did not exit")


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_owner_liveness_is_pid_and_start_time_and_a_zombie_is_dead():
    me = os.getpid()
    assert owner_alive(me, process_start(me))
    assert owner_alive(me, None)  # an older ledger: pid only
    assert not owner_alive(me, process_start(me) - 1)  # same pid, another process
    assert not owner_alive(_dead_pid(), None)
    zombie = _zombie()
    try:
        assert os.path.exists(f"/proc/{zombie}")  # kill(pid, 0) would call it alive
        assert not owner_alive(zombie, None)
    finally:
        os.waitpid(zombie, 0)


def test_a_live_instance_is_never_claimed_and_a_dead_one_is(state):
    live = Ledger.create()
    assert os.path.exists(os.path.join(live.dir, "lock"))
    assert json.load(open(os.path.join(live.dir, "ledger.json")))["owner_start"] == process_start(os.getpid())
    assert claim_dead(live.tag) is None  # its lock is held
    live.owner, live.owner_start = _dead_pid(), None
    live.save()
    assert claim_dead(live.tag) is None  # lock held: owner's word wins
    live.release()
    claimed = claim_dead(live.tag)
    assert claimed is not None and claimed.tag == live.tag
    assert claim_dead(live.tag) is None  # one sweeper at a time
    claimed.remove()
    assert not os.path.exists(live.dir)


def test_zombie_owner_is_stale(state):
    zombie = _zombie()
    try:
        ledger = Ledger.create()
        ledger.owner, ledger.owner_start = zombie, process_start(zombie)
        ledger.save()
        ledger.release()
        assert claim_dead(ledger.tag) is not None
    finally:
        os.waitpid(zombie, 0)


def test_older_ledger_without_lock_is_spared_while_its_owner_runs(state):
    """An older testbed version (no lock, no start time) running next to this one."""
    os.makedirs(os.path.join(ledgers.STATE_DIR, "abcd"))
    with open(os.path.join(ledgers.STATE_DIR, "abcd", "ledger.json"), "w") as h:
        json.dump({"tag": "abcd", "owner": os.getpid()}, h)
    assert claim_dead("abcd") is None
    os.makedirs(os.path.join(ledgers.STATE_DIR, "abce"))  # mkdir done, ledger not yet
    assert claim_dead("abce") is None
    assert claim_dead("abce", now=time.time() + ledgers.UNRECORDED_GRACE_S + 1) is not None


def test_tags_never_collide(state, monkeypatch):
    tags = iter(["aaaa", "aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr(ledgers.secrets, "token_hex", lambda _n: next(tags))
    first, second = Ledger.create(), Ledger.create()
    assert (first.tag, second.tag) == ("aaaa", "bbbb")
    first.remove(), second.remove()


def test_sweep_spares_an_instance_created_while_it_runs(state, monkeypatch):
    """Item 1: the old sweep listed live instances, then removed every folder not listed,
    including one created in between. Here an instance starts in the middle of a sweep."""
    dead = Ledger.create()
    dead.owner, dead.owner_start = _dead_pid(), None
    dead.save()
    dead.release()
    born: list[Ledger] = []
    real = ledgers.claim_dead

    def claim_and_meanwhile_start_one(tag, now=None):
        if not born:
            t = threading.Thread(target=lambda: born.append(Ledger.create()))
            t.start()
            t.join(0.2)  # it waits for the registry lock the sweep holds
            born.append(None)  # type: ignore[arg-type]
        return real(tag, now)

    monkeypatch.setattr(cleanup, "claim_dead", claim_and_meanwhile_start_one)
    report = cleanup.clean(RecordingRunner(), only_stale=True)
    deadline = time.monotonic() + 5
    while len(born) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    new = [b for b in born if b is not None][0]
    assert report.state_dirs == [dead.dir]
    assert os.path.exists(os.path.join(new.dir, "ledger.json")) and new.tag != dead.tag
    new.remove()


def _instance_worker(state_dir: str, rounds: int, out) -> None:
    ledgers.STATE_DIR = state_dir
    lost = 0
    for _ in range(rounds):
        ledger = Ledger.create()
        time.sleep(random.uniform(0, 0.01))
        ledger.add_netns([f"tb-{ledger.tag}-x"])  # fails if a sweep removed the folder
        if Ledger.load(ledger.tag) is None:
            lost += 1
        ledger.remove()
    out.put(lost)


def _sweeper(state_dir: str, seconds: float, out) -> None:
    ledgers.STATE_DIR = state_dir
    swept, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        swept += len(cleanup.clean(RecordingRunner(), only_stale=True).state_dirs)
    out.put(swept)


def test_concurrent_sweeps_and_instances_never_lose_a_live_ledger(state):
    """Four processes start and end instances while two others sweep, with dead ones around."""
    for _ in range(5):
        dead = Ledger.create()
        dead.owner, dead.owner_start = _dead_pid(), None
        dead.save()
        dead.release()
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_instance_worker, args=(ledgers.STATE_DIR, 40, out)) for _ in range(4)]
    procs += [ctx.Process(target=_sweeper, args=(ledgers.STATE_DIR, 1.5, out)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0, "a worker crashed (its ledger folder was removed under it?)"
    results = sorted(out.get(timeout=5) for _ in procs)
    assert results[:4] == [0, 0, 0, 0]  # no live ledger ever lost
    assert sum(results) == 5  # every dead one, exactly once
    assert list(ledgers.all_tags()) == []


def _read_sys(state) -> dict[str, int]:
    base = state / "sys" / "net/ipv4/neigh/default"
    return {f"gc_thresh{n}": int((base / f"gc_thresh{n}").read_text()) for n in (1, 2, 3)}


class _Plan:
    """Just what limits.targets reads: pods (with a node), nodes and externals."""

    def __init__(self, pods_per_node: int, nodes: int = 1) -> None:
        class Pod:
            def __init__(self, node: str) -> None:
                self.node = node

        self.pods = [Pod(f"n{i}") for i in range(nodes) for _ in range(pods_per_node)]
        self.nodes = [object()] * nodes
        self.externals: list = []


def test_sysctls_are_shared_by_live_instances_and_restored_by_the_last(state):
    original = _read_sys(state)
    small, big = _Plan(30), _Plan(60)  # need 2*(30*31+1)=1862, 7322
    me, start = os.getpid(), process_start(os.getpid())
    limits.hold("aaaa", me, start, small)
    assert _read_sys(state) == {"gc_thresh1": 465, "gc_thresh2": 1396, "gc_thresh3": 1862}
    limits.hold("bbbb", me, start, big)
    assert _read_sys(state)["gc_thresh3"] == 7322
    limits.release("bbbb")  # aaaa still needs its share
    assert _read_sys(state) == {"gc_thresh1": 465, "gc_thresh2": 1396, "gc_thresh3": 1862}
    limits.release("aaaa")
    assert _read_sys(state) == original
    assert not os.path.exists(os.path.join(ledgers.STATE_DIR, limits.RECORD))


def test_sysctls_of_a_dead_holder_are_restored_by_the_stale_sweep_only(state):
    original = _read_sys(state)
    limits.hold("aaaa", os.getpid(), process_start(os.getpid()), _Plan(60))
    child = os.fork()
    if child == 0:
        time.sleep(30)
        os._exit(0)
    try:
        limits.hold("dies", child, process_start(child), _Plan(90))
        assert _read_sys(state)["gc_thresh3"] == 2 * (90 * 91 + 1)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    assert limits.restore() == {"gc_thresh1": 1830, "gc_thresh2": 5491, "gc_thresh3": 7322}
    assert limits.restore() == {}  # a live holder still needs it
    assert _read_sys(state)["gc_thresh3"] == 7322
    limits.restore(everyone=True)  # `testbed clean`
    assert _read_sys(state) == original


def test_a_value_changed_by_someone_else_is_never_lowered(state):
    limits.hold("aaaa", os.getpid(), process_start(os.getpid()), _Plan(60))
    (state / "sys" / "net/ipv4/neigh/default/gc_thresh3").write_text("99999\n")
    limits.release("aaaa")
    assert _read_sys(state)["gc_thresh3"] == 99999
    assert _read_sys(state)["gc_thresh1"] == 128


def test_signals_during_a_shielded_block_are_noted_and_acted_on_after(capfd):
    signals.resume()
    before = signal.getsignal(signal.SIGINT)
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with signals.shielded():
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            reached.append(True)
    assert reached == [True]
    assert capfd.readouterr().err.count("teardown in progress, signal noted") == 1  # once, not per signal
    assert signal.getsignal(signal.SIGINT) is before  # handlers given back


def test_after_the_first_signal_no_other_interrupts(capfd):
    signals.resume()
    previous = signals.install()
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)  # the teardown's window
        time.sleep(0.05)
        with signals.shielded():
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)
    finally:
        signals.uninstall(previous)
    assert capfd.readouterr().err.count("signal noted") == 1


def test_run_folders_are_unique_and_made_at_once(tmp_path):
    ids = ["20260101-000000-quickstart"] * 20
    made: list[tuple[str, str]] = []
    threads = [threading.Thread(target=lambda i=i: made.append(unique_run_dir(str(tmp_path / "r"), i))) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    paths = sorted(p for p, _ in made)
    assert len(set(paths)) == 20 and all(os.path.isdir(p) for p in paths)
    assert {n for _, n in made} == {ids[0]} | {f"{ids[0]}-{k}" for k in range(2, 21)}


def test_a_failed_run_leaves_no_empty_folder(tmp_path):
    path, _ = unique_run_dir(str(tmp_path), "x")
    with pytest.raises(KeyboardInterrupt), discarded_if_empty(path):
        raise KeyboardInterrupt
    assert not os.path.exists(path)
    path, _ = unique_run_dir(str(tmp_path), "y")
    with pytest.raises(RuntimeError), discarded_if_empty(path):
        open(os.path.join(path, "pcap"), "w").close()
        raise RuntimeError
    assert os.path.exists(path)


def test_programs_a_teardown_starts_cannot_be_killed_by_ctrl_c():
    """A terminal's Ctrl-C goes to the whole process group: the `ip netns del` a teardown runs
    must not die of it (they inherit the blocked signals), while the testbed notes it."""
    import subprocess

    with signals.shielded():
        child = subprocess.Popen(["sleep", "0.2"])
        time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=5) == 0
    outside = subprocess.Popen(["sleep", "5"])
    outside.send_signal(signal.SIGTERM)
    assert outside.wait(timeout=5) == -signal.SIGTERM  # the block ends with the shield
