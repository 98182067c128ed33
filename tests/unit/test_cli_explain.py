"""`testbed explain` needs no root: it reads the manifests and asks the policy oracle."""

import os

from testbed.cli import main
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOPO = os.path.join(ROOT, "topologies/three-nodes.yaml")
NGINX = os.path.join(ROOT, "manifests/seed003-nginx.yaml")
POLICY = os.path.join(ROOT, "manifests/seed003-access-nginx.yaml")


def _nginx():
    plan = plan_cluster(load_topology(TOPO), load_manifests([NGINX]), seed=0)
    return next(p.name for p in plan.pods if p.name.startswith("nginx-"))


def test_explain_flow_blocked_then_allowed(capsys):
    nginx = _nginx()
    assert main(["explain", TOPO, "-f", NGINX, "-f", POLICY, "--from", "busybox", "--to", nginx]) == 3
    out = capsys.readouterr().out
    assert "BLOCKED at ingress" in out and "default/access-nginx" in out and "access=true" in out
    assert main(["explain", TOPO, "-f", NGINX, "--from", "busybox", "--to", nginx, "--port", "80/TCP"]) == 0
    assert "ALLOWED" in capsys.readouterr().out.upper()


def test_explain_pod_and_bad_names(capsys):
    assert main(["explain", TOPO, "-f", NGINX, "-f", POLICY, "--pod", _nginx()]) == 0
    assert "isolated by 1 policy" in capsys.readouterr().out
    assert main(["explain", TOPO, "-f", NGINX, "--from", "nosuch", "--to", "busybox"]) == 2
    assert "no pod, node or external host called 'nosuch'" in capsys.readouterr().err


def test_the_readme_explain_examples_work_as_printed(capsys, monkeypatch):
    """Every `testbed explain topologies/...` line README.md prints runs, and says what the README
    says it says (the tier that decided; a Service flow traced to delivery)."""
    import re
    import shlex

    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    lines = re.findall(r"`(testbed explain topologies/[^`]+)`", readme)
    assert len(lines) >= 2, lines
    monkeypatch.chdir(ROOT)
    outputs = {}
    for line in lines:
        rc = main(shlex.split(line)[1:])
        out, err = capsys.readouterr()
        assert rc in (0, 3) and not err, (line, rc, err)
        outputs[line] = out
    cnp = next(o for line, o in outputs.items() if "cnp-tiers.yaml" in line)
    assert "Admin cnp/deny-sensitive rule select-all-deny-all: Deny" in cnp
    # ... "from team-b/api to team-a/web, `passed to NetworkPolicy: allowed by team-a/allow-team-b`"
    cnp_line = next(line for line in lines if "cnp-tiers.yaml" in line)
    rc = main([*shlex.split(cnp_line)[1:-4], "--from", "team-b/api", "--to", "team-a/web"])
    assert rc == 0 and "passed to NetworkPolicy: allowed by team-a/allow-team-b" in capsys.readouterr().out
    trace = next(o for line, o in outputs.items() if "--trace" in line)
    assert "DELIVERED" in trace.splitlines()[0]
