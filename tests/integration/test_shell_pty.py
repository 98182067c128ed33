"""`testbed up` driven through a pseudo-terminal as a person would type (pexpect): seed 003's
kubectl commands exactly as the seed prints them, a Mininet-style session, Ctrl-C at the prompt."""

from __future__ import annotations

import os
import signal
import time

import pexpect

from .conftest import ROOT

TOPO = os.path.join(ROOT, "topologies", "three-nodes.yaml")
PROMPT = "testbed> "


def _spawn(testbed_cmd, tmp_path, *extra):
    argv, env = testbed_cmd
    env = dict(env, HOME=str(tmp_path), XDG_STATE_HOME=str(tmp_path / "state"), TERM="dumb")
    child = pexpect.spawn(
        argv[0], argv[1:] + ["up", TOPO, "-q", *extra], env=env, encoding="utf-8", timeout=60, dimensions=(50, 200)
    )
    child.expect_exact(PROMPT)
    return child


def _close(child) -> None:
    """After a failure: SIGTERM lets `testbed up` tear down (pexpect's own close would SIGKILL it)."""
    if child.isalive():
        child.kill(signal.SIGTERM)
        child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=60)
    child.close(force=True)


def _type(child, line: str, until: str = PROMPT, timeout: int = 30) -> str:
    child.sendline(line)
    child.expect_exact(until, timeout=timeout)
    return child.before


def _leave(child) -> None:
    child.sendline("exit")
    child.expect(pexpect.EOF, timeout=60)
    child.close()
    assert child.exitstatus == 0


def _busybox_session(child, run_line: str) -> str:
    """`kubectl run ... -ti -- /bin/sh`, then wget in the pod's shell, then exit (--rm deletes it)."""
    _type(child, run_line, until="busybox:/# ")
    out = _type(child, "wget --spider --timeout=1 nginx", until="busybox:/# ", timeout=30)
    _type(child, "hostname", until="busybox:/# ")
    assert child.before.strip().splitlines()[-1].strip() == "busybox"  # its own UTS namespace
    _type(child, "exit", until=PROMPT, timeout=60)
    assert 'pod "busybox" deleted' in child.before
    return out


def test_seed003_typed_as_the_seed_prints_it(testbed_cmd, tmp_path, no_leftovers):
    child = _spawn(testbed_cmd, tmp_path)
    try:
        assert "deployment.apps/nginx created" in _type(child, "kubectl create deployment nginx --image=nginx")
        assert "service/nginx exposed" in _type(child, "kubectl expose deployment nginx --port=80")
        out = _type(child, "kubectl get svc,pod")
        assert "service/nginx" in out and "pod/nginx-" in out and "Running" in out
        ok = _busybox_session(child, "kubectl run busybox --rm -ti --image=busybox:1.28 -- /bin/sh")
        assert "Remote file exists." in ok
        out = _type(child, "kubectl apply -f https://k8s.io/examples/service/networking/nginx-policy.yaml")
        assert "networkpolicy.networking.k8s.io/access-nginx created" in out and "shipped copy" in out
        blocked = _busybox_session(child, "kubectl run busybox --rm -ti --image=busybox:1.28 -- /bin/sh")
        assert "timed out" in blocked and "Remote file exists." not in blocked
        allowed = _busybox_session(
            child, 'kubectl run busybox --rm -ti --labels="access=true" --image=busybox:1.28 -- /bin/sh'
        )
        assert "Remote file exists." in allowed
        assert "busybox" not in _type(child, "kubectl get pods")  # --rm deleted it
        _leave(child)
    finally:
        _close(child)


def test_mininet_session_pipes_and_ctrl_c(testbed_cmd, tmp_path, no_leftovers):
    app = os.path.join(ROOT, "manifests", "seed003-nginx.yaml")
    child = _spawn(testbed_cmd, tmp_path, "-f", app)
    try:
        assert "kind-worker" in _type(child, "nodes")
        assert "busybox eth0:" in _type(child, "net")
        assert "0% dropped" in _type(child, "pingall", timeout=60)
        nginx = [w for w in _type(child, "get pods -o name").split() if w.startswith("pod/nginx-")][0][4:]
        assert "1 received" in _type(child, f"busybox ping -c1 -W2 {nginx}")
        out = _type(child, "kind-worker iptables-save -t nat | grep KUBE-SVC")
        assert "KUBE-SVC-" in out and "Unknown arguments" not in out
        assert "status=1" in _type(child, "busybox false; echo status=$?")
        child.send("busybox sh\r")  # a shell in the pod, named after it
        child.expect_exact("busybox:/# ")
        child.sendline("hostname; echo $((6*7)) | cat")
        child.expect_exact("busybox:/# ")
        assert "busybox" in child.before and "42" in child.before
        _type(child, "exit")
        _type(child, "kubectl exec -ti busybox -- /bin/sh", until="busybox:/# ")
        _type(child, "exit")
        child.send("describe pod ngin\t")  # Tab completes a name with dashes
        child.expect_exact(nginx)
        _type(child, "", until=PROMPT)
        assert f"Name:         {nginx}" in child.before
        child.sendline("busybox ping kind-worker")  # Ctrl-C stops the command, not the shell
        child.expect_exact("icmp_seq=1")
        child.sendintr()
        child.expect_exact(PROMPT)
        assert "packets transmitted" in child.before
        _type(child, "busybox sh", until="busybox:/# ")
        child.sendline("sleep 30")
        child.expect_exact("sleep 30")
        time.sleep(0.5)  # sleep is running
        child.sendintr()  # inside the pod's shell: only sleep stops
        child.expect_exact("busybox:/# ")
        _type(child, "exit")
        child.send("get pods -o wi")  # half a line, then Ctrl-C clears it
        child.expect_exact("get pods -o wi")
        child.sendintr()
        child.expect_exact(PROMPT)
        assert "NAME" in _type(child, "get nodes")  # the cluster survived
        _leave(child)
        history = (tmp_path / "state" / "testbed" / "history").read_text().splitlines()
        assert "nodes" in history and "get nodes" in history and "get pods -o wi" not in history
    finally:
        _close(child)


def test_script_stops_at_the_first_failure_with_its_status(testbed_cmd, tmp_path, no_leftovers):
    argv, env = testbed_cmd
    script = tmp_path / "tutorial.txt"
    script.write_text("# a tutorial as a test\nget nodes\nkubectl get pods nope\nget pods\n")
    child = pexpect.spawn(
        argv[0], argv[1:] + ["up", TOPO, "-q", "--script", str(script)], env=env, encoding="utf-8", timeout=60
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert 'Error from server (NotFound): pods "nope" not found' in child.before
    assert "testbed> get pods\n" not in child.before.replace("\r", "")
