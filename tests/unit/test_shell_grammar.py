"""kubectl's grammar, selectors and output formats in the shell, without a cluster."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from testbed.plan.build import plan_cluster
from testbed.shell import ClusterShell
from testbed.shell.grammar import KubectlError, parse, resource, targets
from testbed.shell.selectors import field_selector, label_selector
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_resource_names_as_kubectl_spells_them():
    assert {resource(w) for w in ("po", "pod", "Pods")} == {"pods"}
    assert resource("deploy") == "deployments" and resource("netpol") == "networkpolicies"
    assert targets(["svc,pod"]) == [("services", []), ("pods", [])]
    assert targets(["pod/a", "pod/b", "svc/c"]) == [("pods", ["a", "b"]), ("services", ["c"])]
    assert targets(["po", "a", "b"]) == [("pods", ["a", "b"])]
    with pytest.raises(KubectlError, match='resource type "frob"'):
        resource("frob")


def test_flags_short_long_combined_and_unknown():
    a = parse(
        ["busybox", "--rm", "-ti", "--image=busybox:1.28", "--", "/bin/sh"],
        {"--image": True, "--rm": False, "--stdin": False, "--tty": False},
    )
    assert a.positional == ["busybox"] and a.has("--stdin") and a.has("--tty") and a.command == ["/bin/sh"]
    assert parse(["-lapp=x", "-oyaml"], {"--selector": True, "--output": True}).get("--output") == "yaml"
    with pytest.raises(KubectlError, match="unknown flag: --frob"):
        parse(["--frob"], {})


def test_label_selectors_equality_and_set_based():
    assert label_selector("app=web,tier!=db").matches({"app": "web"})
    assert not label_selector("app=web,tier!=db").matches({"app": "web", "tier": "db"})
    sel = label_selector("env in (a,b),!canary,gpu")
    assert sel.matches({"env": "a", "gpu": "1"}) and not sel.matches({"env": "c", "gpu": "1"})
    assert not sel.matches({"env": "a", "gpu": "1", "canary": "y"})
    assert field_selector("spec.nodeName=n1")({"spec.nodeName": "n1"})
    with pytest.raises(KubectlError):
        field_selector("spec.frob=1")


@pytest.fixture
def shell():
    m = load_manifests([os.path.join(ROOT, "manifests/seed003-nginx.yaml")])
    plan = plan_cluster(load_topology(os.path.join(ROOT, "topologies/three-nodes.yaml")), m, seed=1)
    sh = ClusterShell(plan, lambda k: k, lambda ns, argv: 0, None, m)
    yield sh
    sh.close()


def test_get_selects_prints_and_fails_as_kubectl(shell, capsys):
    assert shell.execute("kubectl get svc,pod") == 0
    out = capsys.readouterr().out
    assert "service/nginx" in out and "pod/busybox" in out and "\n\nNAME" in out
    assert shell.execute("get pods -l app=nginx") == 0
    out = capsys.readouterr().out
    assert "nginx-" in out and "busybox" not in out
    assert shell.execute("get pods busybox -o yaml") == 0
    assert yaml.safe_load(capsys.readouterr().out)["metadata"]["labels"] == {"run": "busybox"}
    assert shell.execute("get pod/busybox -o json") == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "Pod"
    assert shell.execute("get po -o name -l run=busybox") == 0
    assert capsys.readouterr().out.strip() == "pod/busybox"
    assert shell.execute("get pods busybox --show-labels") == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("run=busybox")
    assert shell.execute("get pods nope") == 1
    assert capsys.readouterr().out.strip() == 'Error from server (NotFound): pods "nope" not found'
    assert shell.execute("get pods -w") == 1 and "not supported" in capsys.readouterr().out
    assert shell.execute("get pods --frob") == 1 and "unknown flag: --frob" in capsys.readouterr().out


def test_describe_and_mininet_words(shell, capsys):
    assert shell.execute("describe svc nginx") == 0
    out = capsys.readouterr().out
    assert "Selector:     app=nginx" in out and "Endpoints:" in out and "Events:" in out
    assert shell.execute("describe pod busybox") == 0 and "Scheduled" in capsys.readouterr().out
    assert shell.execute("describe pod ngin") == 0  # a prefix, as kubectl describe takes it
    assert "Name:         nginx-" in capsys.readouterr().out
    assert shell.execute("get -A all -o name") == 0 and "deployment.apps/nginx" in capsys.readouterr().out
    for word in ("nodes", "net", "links", "dump", "help"):
        assert shell.execute(word) == 0
    assert "<pod|node|host> CMD" in capsys.readouterr().out
    assert shell.execute("pingall") == 1 and "cannot probe" in capsys.readouterr().out
    assert shell.execute("xterm busybox") == 1 and "busybox sh" in capsys.readouterr().out
    assert shell.execute("kubectl edit pod x") == 1 and "not supported" in capsys.readouterr().out


def test_changes_without_a_live_cluster_say_so(shell, capsys):
    assert shell.execute("kubectl create deployment web --image=nginx") == 1
    assert "cannot change" in capsys.readouterr().out
    assert shell.execute("kubectl apply -f https://example.com/x.yaml") == 1
    assert "no shipped copy" in capsys.readouterr().out


def test_completion_of_commands_types_dashed_names_flags_and_paths(shell, tmp_path):
    from testbed.shell.lineedit import candidates

    assert "pingall " in candidates(shell, [], "ping") and "kubectl " in candidates(shell, [], "kub")
    assert candidates(shell, ["get"], "netp") == ["netpol "]
    nginx = next(p.name for p in shell.plan.pods if p.name.startswith("nginx-"))
    assert candidates(shell, ["kubectl", "describe", "pod"], "nginx-") == [nginx + " "]
    assert candidates(shell, ["busybox", "ping"], nginx[:8]) == [nginx + " "]  # names with dashes
    assert "--show-labels" in candidates(shell, ["get", "pods"], "--sh")
    (tmp_path / "my-app.yaml").write_text("")
    assert candidates(shell, ["apply", "-f"], str(tmp_path / "my-")) == [str(tmp_path / "my-app.yaml") + " "]
    assert candidates(shell, ["get", "pods", "-o"], "ya") == ["yaml"]


def test_names_become_ips_except_in_command_position():
    from testbed.shell.execns import substitute

    ips = {"busybox": "10.0.0.2", "web-1": "10.0.0.3"}
    assert substitute("ping -c1 web-1", ips) == "ping -c1 10.0.0.3"
    assert substitute("wget http://web-1:80/x | head", ips) == "wget http://10.0.0.3:80/x | head"
    assert (
        substitute("busybox ping web-1; busybox nc -z busybox 80", ips)
        == "busybox ping 10.0.0.3; busybox nc -z 10.0.0.2 80"
    )


def test_jsonpath_and_custom_columns(shell, capsys):
    from testbed.shell.output import jsonpath

    data = {"items": [{"metadata": {"name": "a", "labels": {"app": "x"}}}, {"metadata": {"name": "b"}}]}
    assert jsonpath(data, "{.items[*].metadata.name}") == "a b"
    assert jsonpath(data, "{.items[0].metadata.labels['app']}{'\\n'}") == "x\n"
    assert shell.execute("get pods busybox -o custom-columns=POD:.metadata.name,NODE:.spec.nodeName") == 0
    assert capsys.readouterr().out.split() == ["POD", "NODE", "busybox", "kind-worker"]
    assert shell.execute("get pods -o frob") == 1 and "allowed formats" in capsys.readouterr().out


@pytest.fixture
def planned():
    """A shell whose changes are re-planned (experiment/changes.py) but applied to no kernel."""
    from testbed.experiment.changes import apply_action
    from testbed.spec.model import Manifests

    spec = load_topology(os.path.join(ROOT, "topologies/three-nodes.yaml"))
    state = {"manifests": Manifests(), "plan": plan_cluster(spec, Manifests(), seed=1)}

    def change(action):
        state["manifests"], state["plan"] = apply_action(action, spec, state["manifests"], state["plan"], "shell")
        return state["plan"], state["manifests"]

    sh = ClusterShell(state["plan"], lambda k: k, lambda ns, argv: 0, change, state["manifests"])
    yield sh
    sh.close()


def test_kubectl_changes_as_the_seed_makes_them(planned, capsys):
    sh = planned
    assert sh.execute("kubectl create deployment nginx --image=nginx") == 0
    assert sh.execute("kubectl expose deployment nginx --port=80") == 0
    assert capsys.readouterr().out.splitlines() == ["deployment.apps/nginx created", "service/nginx exposed"]
    svc = sh.plan.services.service("default", "nginx")
    assert [p.port for p in svc.ports] == [80] and dict(svc.selector) == {"app": "nginx"}
    nginx = [p for p in sh.plan.pods if p.labels.get("app") == "nginx"]
    assert len(nginx) == 1 and [q.port for q in nginx[0].ports] == [80]  # nginx's image listens on 80
    assert sh.execute("kubectl create deployment nginx --image=nginx") == 1
    assert 'Error from server (AlreadyExists): deployments.apps "nginx" already exists' in capsys.readouterr().out
    assert sh.execute('kubectl run client --image=busybox:1.28 --labels="access=true"') == 0
    assert sh.plan.find_pod("client").labels == {"access": "true"}
    capsys.readouterr()
    assert sh.execute("kubectl apply -f https://k8s.io/examples/service/networking/nginx-policy.yaml") == 0
    out = capsys.readouterr()
    assert "networkpolicy.networking.k8s.io/access-nginx created" in out.out and "shipped copy" in out.err
    assert sh.execute("label pod client access=false") == 1 and "--overwrite" in capsys.readouterr().out
    assert sh.execute("label pod client access=false --overwrite") == 0
    assert sh.plan.find_pod("client").labels == {"access": "false"}
    assert sh.execute("annotate pod client note=hi") == 0
    assert sh.execute("get pod client -o jsonpath={.metadata.annotations.note}") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "hi"
    assert sh.execute("annotate pod client note-") == 0 and sh.execute("describe pod client") == 0
    assert "Annotations:  <none>" in capsys.readouterr().out
    assert sh.execute("scale deploy/nginx --replicas=3") == 0
    assert len([p for p in sh.plan.pods if p.labels.get("app") == "nginx"]) == 3
    capsys.readouterr()
    assert sh.execute("describe svc nginx") == 0  # its endpoints grew from one pod to three
    assert capsys.readouterr().out.count("EndpointsChanged") == 2
    assert sh.execute("delete pods -l app=nginx") == 0  # the Deployment replaces them
    assert len([p for p in sh.plan.pods if p.labels.get("app") == "nginx"]) == 3
    assert sh.execute("delete netpol access-nginx") == 0 and not sh.manifests.policies
    assert sh.execute("delete deployment nginx") == 0
    assert not [p for p in sh.plan.pods if p.labels.get("app") == "nginx"]
    capsys.readouterr()
    assert sh.execute("get pods") == 0 and "client" in capsys.readouterr().out
    assert sh.execute("delete pod nope") == 1
    assert capsys.readouterr().out.strip() == 'Error from server (NotFound): pods "nope" not found'


def test_bad_names_and_huge_lines_are_one_line_errors(planned, capsys):
    assert planned.execute("kubectl create deployment ../../etc --image=nginx") == 1
    out = capsys.readouterr().out
    assert out.startswith('The Deployment "../../etc" is invalid: metadata.name') and out.count("\n") == 1
    assert planned.execute("kubectl run Big --image=busybox") == 1 and "is invalid" in capsys.readouterr().out
    assert planned.execute("get pods " + "x" * 100_000) == 1
    assert len(capsys.readouterr().out) < 200
    assert planned.execute("get pods " + "y" * 5000) == 1
    assert len(capsys.readouterr().out) < 400


def test_pending_pods_and_kinds_that_are_not_emulated(planned, capsys, tmp_path):
    f = tmp_path / "mixed.yaml"
    f.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: b}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: stuck}\n"
        "spec: {nodeSelector: {disk: none}, containers: [{name: c}]}\n"
    )
    assert planned.execute(f"apply -f {f}") == 0
    out = capsys.readouterr().out
    assert "configmap/cfg created" in out and "pod/stuck created" in out
    assert planned.execute("get pods stuck") == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:3] == ["stuck", "0/1", "Pending"]
    assert planned.execute("describe pod stuck") == 0 and "FailedScheduling" in capsys.readouterr().out
    assert planned.execute(f"create -f {f}") == 1 and "AlreadyExists" in capsys.readouterr().out
    assert planned.execute(f"delete -f {f}") == 0 and 'configmap "cfg" deleted' in capsys.readouterr().out
