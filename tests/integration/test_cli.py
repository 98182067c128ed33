"""The `testbed` command as a user runs it: up with shell commands, bad input, kill -9 + clean."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from .conftest import ROOT, kernel_snapshot, swept

TOPO = os.path.join(ROOT, "topologies", "three-nodes.yaml")
APP = os.path.join(ROOT, "manifests", "quickstart-app.yaml")


def test_up_runs_shell_commands_and_tears_down(testbed_cmd, no_leftovers):
    argv, env = testbed_cmd
    cmds = [
        "get nodes -o wide",
        "get pods -o wide",
        "describe pod two-containers",
        "two-containers ping -c1 -W2 web-66849f5996-9q68l",
        "kind-worker ip route",
    ]
    out = subprocess.run(
        argv + ["up", TOPO, "-f", APP, "--seed", "1", "-q"] + sum((["-c", c] for c in cmds), []),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "kind-worker2" in out.stdout and "10.244.2.0/24" in out.stdout
    assert "web-66849f5996-9q68l" in out.stdout and "10.244.2.2" in out.stdout
    assert "1 packets transmitted, 1 received" in out.stdout  # name replaced by the pod IP
    assert "10.244.2.0/24 via 192.168.1.4 dev eth0" in out.stdout  # host-gw route on the node


def test_bad_input_exits_2_with_one_line_and_builds_nothing(testbed_cmd, tmp_path, no_leftovers):
    argv, env = testbed_cmd
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "    - name: c\n      ports: [{containerPort: eighty}]\n"
    )
    out = subprocess.run(
        argv + ["up", TOPO, "-f", str(bad), "-c", "get pods"], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"testbed: error: {bad} (Pod default/p): spec.containers[0].ports[0].containerPort: "
        "expected an integer, got string 'eighty'"
    ]
    assert "Traceback" not in out.stderr
    missing = subprocess.run(argv + ["run", str(tmp_path / "nope.yaml")], capture_output=True, text=True, env=env)
    assert missing.returncode == 2 and "file not found" in missing.stderr and "Traceback" not in missing.stderr


def test_kill9_mid_run_then_clean_leaves_nothing(clean_slate, testbed_cmd):
    argv, env = testbed_cmd
    before = kernel_snapshot()
    proc = subprocess.Popen(
        argv + ["up", TOPO, "-f", APP, "-c", "kind-worker sleep 60"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until the cluster is up and the shell command runs
            if len(kernel_snapshot()["netns"]) >= len(before["netns"]) + 9 and "sleep 60" in _ps():
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the cluster did not come up")
        tag = _tag_of(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # kill -9 left the namespaces behind, unless another instance's start-up sweep took them already
    assert kernel_snapshot()["netns"] != before["netns"] or swept(tag)
    out = subprocess.run(argv + ["clean", "--stale"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "removed" in out.stdout or ("nothing to clean" in out.stdout and swept(tag)), out.stdout
    deadline = time.monotonic() + 5
    while kernel_snapshot() != before and time.monotonic() < deadline:
        time.sleep(0.1)  # processes we SIGTERMed may take a moment to be reaped
    assert kernel_snapshot() == before
    again = subprocess.run(argv + ["clean", "--stale"], capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode == 0 and "nothing to clean" in again.stdout  # idempotent


def _tag_of(pid: int) -> str:
    """The tag of the instance process `pid` owns (its ledger names it)."""
    for tag in os.listdir("/run/testbed"):
        try:
            if json.load(open(f"/run/testbed/{tag}/ledger.json"))["owner"] == pid:
                return tag
        except (OSError, ValueError, KeyError):
            continue
    raise AssertionError(f"no instance owned by {pid}")


def _ps() -> str:
    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def test_scenario003_by_hand_in_the_shell(testbed_cmd, no_leftovers):
    """Scenario 003 as a user types it: wget works, the policy blocks it, access=true lets it in."""
    argv, env = testbed_cmd
    nginx = os.path.join(ROOT, "manifests", "seed003-nginx.yaml")
    policy = os.path.join(ROOT, "manifests", "seed003-access-nginx.yaml")
    wget = "busybox wget --spider --timeout=1 nginx"
    out = subprocess.run(
        argv
        + [
            "up",
            TOPO,
            "-f",
            nginx,
            "-q",
            "-c",
            "get svc",
            "-c",
            wget,
            "-c",
            f"apply -f {policy}",
            "-c",
            "get netpol",
            "-c",
            f"{wget} || echo blocked",
            "-c",
            "label pod busybox access=true",
            "-c",
            wget,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    assert "nginx        ClusterIP" in out.stdout and "access-nginx" in out.stdout
    assert text.count("Remote file exists.") == 2  # before the policy, and with access=true
    assert text.count("failed: Connection timed out.") == 1  # under the policy
    assert text.index("failed: Connection timed out.") < text.rindex("Remote file exists.")
