"""Commands load only what they use (issue 18: `testbed plan` starts in ≤ 0.3 s), checked by
the modules a fresh interpreter holds after the command, never by timing; and the packages whose
re-exports load on first use (testbed/lazy.py) still give every name they did."""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOPOLOGY = os.path.join(REPO, "topologies", "three-nodes.yaml")
MANIFESTS = os.path.join(REPO, "manifests", "quickstart-app.yaml")
LAZY_PACKAGES = ("testbed.netpol", "testbed.rules", "testbed.kubeproxy", "testbed.ingress")

# What `testbed plan` of an IPv4 cluster without an Ingress never uses: the rule compilers,
# the packet tracer and renderers, the ingress controller, the IPv6 planning, and everything of
# a run (the kernel side, the dataset, the report).
NOT_FOR_PLAN = (
    "testbed.rules.tracer",
    "testbed.rules.render_nft",
    "testbed.rules.render_iptables",
    "testbed.netpol.compiler",
    "testbed.netpol.oracle",
    "testbed.netpol.world",
    "testbed.kubeproxy",
    "testbed.ingress",
    "testbed.spec.ingress",
    "testbed.plan.rulesets",
    "testbed.plan.edges6",
    "testbed.plan.dualroutes",
    "testbed.plan.ipv6",
    "testbed.plan.view6",
    "testbed.emu.cluster",
    "testbed.experiment.run",
    "pandas",
    "matplotlib",
    "scapy",
)


def _modules_after(code: str) -> tuple[set[str], str]:
    """The modules a fresh interpreter holds after running `code` (whose stdout is returned)."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(json.loads(proc.stderr.strip().splitlines()[-1])), proc.stdout


def test_testbed_plan_of_an_ipv4_cluster_loads_no_compiler_tracer_ipv6_or_run_module():
    code = f"from testbed.cli import main\nmain(['plan', {TOPOLOGY!r}, '-f', {MANIFESTS!r}])"
    loaded, out = _modules_after(code)
    assert "web-" in out and "testbed.plan.build" in loaded  # the plan was made and printed
    assert sorted(m for m in NOT_FOR_PLAN if m in loaded) == []


def test_the_plan_still_compiles_its_rules_when_asked():
    """The deferred imports are there when used: a Plan's rulesets load kube-proxy and the
    policy compiler (and only then)."""
    code = (
        "from testbed.spec.topology import load_topology\nfrom testbed.spec.workloads import load_manifests\n"
        "from testbed.plan.build import plan_cluster\nimport sys\n"
        f"c = load_topology({TOPOLOGY!r})\np = plan_cluster(c, load_manifests([{MANIFESTS!r}]))\n"
        "assert 'testbed.kubeproxy' not in sys.modules\n"
        "print(sum(len(r.tables) for r in p.rulesets.values()))"
    )
    loaded, out = _modules_after(code)
    assert int(out) > 0 and {"testbed.kubeproxy.iptables", "testbed.netpol.compiler"} <= loaded
    assert "testbed.rules.tracer" not in loaded  # compiling needs no tracer


def _lazy_names(package: str) -> dict[str, tuple[str, str]]:
    """name -> (absolute module, name there) of the package's `if TYPE_CHECKING:` imports."""
    init = importlib.import_module(package).__file__
    assert init is not None
    with open(init, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                module = importlib.util.resolve_name("." * imp.level + (imp.module or ""), package)
                out.update({a.asname or a.name: (module, a.name) for a in imp.names})
    return out


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_public_name_of_a_lazy_package_is_the_object_its_module_holds(package):
    mod = importlib.import_module(package)
    lazy = _lazy_names(package)
    assert lazy, "the package names its re-exports under `if TYPE_CHECKING:`"
    for name in mod.__all__:
        value = getattr(mod, name)
        if name in lazy:
            where, original = lazy[name]
            assert value is getattr(importlib.import_module(where), original), name
    with pytest.raises(AttributeError):
        mod.no_such_name  # noqa: B018


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_no_lazy_name_is_also_a_submodule(package):
    """Importing a submodule makes it the package's attribute of that name: a lazy re-export of
    the same name (kubeproxy's `render`) would then read as the module, so it must stay eager."""
    folder = os.path.dirname(importlib.import_module(package).__file__ or "")
    clashes = [n for n in _lazy_names(package) if os.path.exists(os.path.join(folder, f"{n}.py"))]
    assert clashes == []


def test_importing_a_lazy_package_loads_none_of_its_names_modules():
    code = "import testbed.netpol, testbed.rules, testbed.ingress"
    loaded, _ = _modules_after(code)
    assert (
        sorted(m for m in ("testbed.netpol.compiler", "testbed.rules.tracer", "testbed.ingress.nginx") if m in loaded)
        == []
    )
    loaded, _ = _modules_after("from testbed.netpol import decide")
    assert "testbed.netpol.oracle" in loaded  # and a name loads its module on use


def test_a_submodule_read_as_an_attribute_is_imported():
    code = "import testbed.rules\nprint(testbed.rules.tracer.__name__)"
    _, out = _modules_after(code)
    assert out.strip() == "testbed.rules.tracer"


def test_testbed_report_loads_no_spec_plan_or_compiler_module(tmp_path):
    """`testbed report RUN` reads a results folder: the dataset and its schema, not the
    topology, the plan's builders, the experiment's expansion or the kernel side."""
    from tests.unit.synthetic_runs import synthetic_rows, write_run

    path = write_run(str(tmp_path / "r"), synthetic_rows(with_services=False))
    loaded, out = _modules_after(f"from testbed.cli import main\nmain(['report', {path!r}])")
    assert "report: " in out and "testbed.report.build" in loaded
    heavy = ("testbed.spec.model", "testbed.plan.model", "testbed.experiment.expand", "testbed.netpol.oracle")
    assert sorted(m for m in heavy + ("testbed.views", "testbed.emu.cluster", "mininet") if m in loaded) == []
