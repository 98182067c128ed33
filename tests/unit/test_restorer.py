"""emu/restorer.py's persistent restore session, against a stand-in program (no root, no kernel).

The stand-in reads its input as iptables-restore -v does: each line in turn, a comment echoed on
stdout when reached, a line starting `-A BAD` fails (its error on stderr, exit 2), `COMMIT`
records the committed table in a file, and it exits 0 at the end of its input."""

from __future__ import annotations

import os
import signal
import sys
import textwrap

import pytest

from testbed.emu.restorer import RestoreSession
from testbed.errors import KernelError

FAKE = textwrap.dedent(
    """
    import sys
    committed, pending = sys.argv[1], []
    for line in sys.stdin:
        if line.startswith("#"):
            sys.stdout.write(line); sys.stdout.flush()
        elif line.startswith("-A BAD"):
            sys.stderr.write("fake-restore: Chain 'BAD' does not exist\\nError occurred at line: 3\\n")
            sys.exit(2)
        elif line.strip() == "COMMIT":
            with open(committed, "a") as f:
                f.write("".join(pending) + "COMMIT\\n")
            pending = []
        else:
            pending.append(line)
    """
)


@pytest.fixture
def fake(tmp_path):
    program = tmp_path / "fake.py"
    program.write_text(FAKE)
    committed = tmp_path / "committed"
    committed.write_text("")
    log = tmp_path / "x" / "restore.log"

    def session() -> RestoreSession:
        return RestoreSession("", [sys.executable, str(program), str(committed)], str(log), name="/run/x/fake")

    return session, committed, log


def text(chain: str) -> str:
    return f"*nat\n:{chain} - [0:0]\n-A {chain} -j RETURN\nCOMMIT\n"


def test_one_process_takes_load_after_load_and_each_returns_once_committed(fake):
    session, committed, _ = fake
    s = session()
    s.load(text("KUBE-A"))
    pid = s.pid
    assert committed.read_text() == "*nat\n:KUBE-A - [0:0]\n-A KUBE-A -j RETURN\nCOMMIT\n"
    s.load("# a header comment\n" + text("KUBE-B"))  # a comment of the text is not taken for the ack
    assert s.pid == pid and s.alive()
    assert committed.read_text().count("COMMIT") == 2
    with open(f"/proc/{pid}/cmdline", "rb") as h:
        assert h.read().split(b"\0")[0] == b"/run/x/fake"  # argv[0] says whose it is
    assert s.close() == 0 and not s.alive()  # it exits by itself at the end of its input
    assert s.close() is None  # twice is safe


def test_a_refused_line_raises_with_its_error_and_the_next_load_starts_a_new_process(fake):
    session, committed, log = fake
    s = session()
    s.load(text("KUBE-A"))
    first = s.pid
    with pytest.raises(KernelError, match="Chain 'BAD' does not exist"):
        s.load("*nat\n:KUBE-C - [0:0]\n-A BAD -j X\nCOMMIT\n")
    assert not s.alive() and committed.read_text().count("COMMIT") == 1  # not committed
    assert "does not exist" in log.read_text()
    s.load(text("KUBE-D"))
    assert s.pid != first and committed.read_text().count("COMMIT") == 2
    s.close()


def test_a_killed_process_is_a_kernel_error_then_replaced(fake):
    session, committed, _ = fake
    s = session()
    s.load(text("KUBE-A"))
    os.kill(s.pid, signal.SIGKILL)
    with pytest.raises(KernelError):
        s.load(text("KUBE-B"))
    s.load(text("KUBE-C"))
    assert committed.read_text().count("COMMIT") == 2
    s.close()


def test_it_ends_when_its_feeder_dies(fake, tmp_path):
    """A feeder killed by SIGKILL leaves no restore process: its input ends with the feeder."""
    import subprocess

    session, _, _ = fake
    feeder = tmp_path / "feeder.py"
    feeder.write_text(
        textwrap.dedent(
            f"""
            import sys, time
            sys.path.insert(0, {os.getcwd()!r})
            from testbed.emu.restorer import RestoreSession
            s = RestoreSession("", {[sys.executable, str(tmp_path / "fake.py"), str(tmp_path / "committed")]!r}, {str(tmp_path / "f.log")!r})
            s.load("*nat\\nCOMMIT\\n")
            print(s.pid, flush=True)
            time.sleep(60)
            """
        )
    )
    proc = subprocess.Popen([sys.executable, str(feeder)], stdout=subprocess.PIPE, text=True)
    try:
        child = int(proc.stdout.readline())
        assert os.path.exists(f"/proc/{child}")
    finally:
        proc.kill()
        proc.wait()
    for _ in range(200):
        try:
            with open(f"/proc/{child}/stat") as h:
                if h.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break  # exited (a zombie until init reaps it: it was in a session of its own)
        except FileNotFoundError:
            break
        import time

        time.sleep(0.01)
    else:
        raise AssertionError("the restore process outlived its feeder")


def test_a_text_written_ahead_is_committed_only_by_the_load_that_continues_it(fake):
    import time

    session, committed, _ = fake
    s = session()
    s.load(text("KUBE-A"))
    two = "# a partial sync\n*filter\n:KUBE-F - [0:0]\n-A KUBE-F -j RETURN\nCOMMIT\n" + text("KUBE-B")
    s.ahead(two)
    assert s.begun == "# a partial sync\n*filter\n:KUBE-F - [0:0]\n-A KUBE-F -j RETURN\n"  # up to the first COMMIT
    time.sleep(0.2)  # the stand-in has read it all: no table of it may be committed yet
    assert committed.read_text().count("COMMIT") == 1
    pid = s.pid
    s.load(two)
    assert s.pid == pid and not s.begun
    assert committed.read_text().endswith("*filter\n:KUBE-F - [0:0]\n-A KUBE-F -j RETURN\nCOMMIT\n" + text("KUBE-B"))
    assert committed.read_text().count("COMMIT") == 3
    with pytest.raises(ValueError, match="does not continue"):
        s.ahead(text("KUBE-C"))
        s.load(text("KUBE-D"))  # another text's end is never committed after a beginning
    assert committed.read_text().count("COMMIT") == 3 and not s.alive()
    s.close()


def test_an_aborted_beginning_is_never_committed_and_the_next_load_starts_anew(fake):
    import time

    session, committed, _ = fake
    s = session()
    s.load(text("KUBE-A"))
    first = s.pid
    s.abort()  # nothing begun: the process stays
    assert s.pid == first and s.alive()
    s.ahead(text("KUBE-B"))
    s.abort()
    assert not s.alive() and not s.begun
    time.sleep(0.1)
    assert committed.read_text().count("COMMIT") == 1
    s.load(text("KUBE-C"))
    assert s.pid != first and committed.read_text().count("COMMIT") == 2 and "KUBE-B" not in committed.read_text()
    s.close()


def test_a_line_refused_ahead_fails_the_load_with_its_error(fake):
    session, committed, log = fake
    s = session()
    bad = "*nat\n:KUBE-C - [0:0]\n-A BAD -j X\nCOMMIT\n"
    s.ahead(bad)
    with pytest.raises(KernelError, match="Chain 'BAD' does not exist"):
        for _ in range(100):  # it fails when it reaches the line; the load (or the next) says so
            s.load(bad)
            s.ahead(bad)
    assert committed.read_text() == "" and not s.begun
    s.close()


def test_the_beginning_ends_before_thefirst_commit_line():
    from testbed.emu.restorer import first_commit

    t = '*nat\n-A KUBE-X -m comment --comment "no COMMIT here" -j RETURN\nCOMMITTED\nCOMMIT\n*filter\nCOMMIT\n'
    assert t[: first_commit(t)].endswith("COMMITTED\n")
    assert first_commit("COMMIT\n") == 0 and first_commit("*nat\n-A X -j Y\n") == -1
    assert first_commit("*nat\nCOMMIT") == 5
