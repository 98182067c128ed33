"""The layers (ARCHITECTURE.md) hold: import-linter's contracts in pyproject.toml, run as a test.

Two contracts: `layers` (a module imports only from layers below its own) and `pure-core` (the
pure core reaches no emu/, traffic/, agent server, namespace entering, subprocess, socket, ctypes
or Mininet, not even through another module). Both count imports hidden inside functions.
The checks below also make sure the contracts cannot quietly stop covering the code: every
module sits in a layer, every pure layer is a source of the pure-core contract, and a copy of
the tree with a bad import breaks both.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tomllib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
LINT_IMPORTS = pathlib.Path(sys.executable).with_name("lint-imports")
CONFIG = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
CONTRACTS = {c["id"]: c for c in CONFIG["contracts"]}
#: The first layer of the pure core; it and every layer below it are pure.
FIRST_PURE_LAYER = "testbed.views"
#: The modules tests/unit/test_purity.py listed as pure before the contracts replaced it (renamed
#: where they moved): each must stay covered by the pure-core contract.
FORMERLY_LISTED_PURE = (
    "testbed.spec",
    "testbed.plan",
    "testbed.errors",
    "testbed.experiment.model",
    "testbed.wire.sctp",
    "testbed.experiment.load",
    "testbed.experiment.expand",
    "testbed.experiment.records",
    "testbed.wire.reply",
    "testbed.agent.config",
    "testbed.agent.sctp_responder",
    # the old shell.py became a package whose pure modules are these (shell.live is its adapter)
    "testbed.shell.grammar",
    "testbed.shell.selectors",
    "testbed.shell.objects",
    "testbed.shell.output",
    "testbed.shell.describe",
    "testbed.shell.execns",
    "testbed.shell.mininet",
    "testbed.shell.kubectl",
    "testbed.analysis",
    "testbed.report",
    "testbed.netpol",
    "testbed.conformance.xyz",
    "testbed.conformance.steps",
    "testbed.conformance.decode",
    "testbed.conformance.dsl",
    "testbed.conformance.tags",
    "testbed.conformance.families",
    "testbed.conformance.generator",
    "testbed.conformance.check",
    "testbed.conformance.results",
    "testbed.conformance.changes",
    "testbed.conformance.junit",
    "testbed.conformance.resources",
    "testbed.spec.netpol",
    "testbed.kubeproxy",
    "testbed.rules",
    "testbed.rulepath",
    "testbed.spec.ingress",
    "testbed.ingress",
)
#: Modules outside every layer: the root package and bare package markers.
UNLAYERED = {"testbed", "testbed.__main__", "testbed.conformance", "testbed.experiment", "testbed.plan"}


def _lint_imports(root: pathlib.Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(root))  # this tree's testbed, not the installed one
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def _layer_modules(layer: str) -> list[str]:
    return [m.strip() for m in layer.replace(":", "|").split("|")]


def _covers(names: list[str], module: str) -> bool:
    return any(module == n or module.startswith(n + ".") for n in names)


def _modules() -> list[str]:
    out = []
    for path in sorted((REPO / "testbed").rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append(".".join(parts))
    return out


def test_the_contracts_hold():
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "2 kept, 0 broken" in result.stdout


def test_every_module_sits_in_a_layer():
    layered = [m for layer in CONTRACTS["layers"]["layers"] for m in _layer_modules(layer)]
    missing = [m for m in _modules() if m not in UNLAYERED and not _covers(layered, m)]
    assert not missing, f"add these to a layer in pyproject.toml (and ARCHITECTURE.md): {missing}"


def test_every_pure_layer_is_held_to_the_pure_core_contract():
    layers = CONTRACTS["layers"]["layers"]
    first = next(i for i, layer in enumerate(layers) if FIRST_PURE_LAYER in _layer_modules(layer))
    pure = [m for layer in layers[first:] for m in _layer_modules(layer)]
    sources = CONTRACTS["pure-core"]["source_modules"]
    bottom_impure = {"testbed.netns"}  # the namespace helper: kernel-facing, but imports nothing of ours
    assert not [m for m in pure if m not in bottom_impure and not _covers(sources, m)]
    assert not [m for m in FORMERLY_LISTED_PURE if not _covers(sources, m)]


def test_the_pure_core_contract_forbids_the_kernel():
    forbidden = set(CONTRACTS["pure-core"]["forbidden_modules"])
    assert {"testbed.emu", "testbed.traffic", "testbed.netns", "subprocess", "socket", "mininet"} <= forbidden
    assert CONTRACTS["pure-core"].get("allow_indirect_imports") in (None, False)  # transitive


@pytest.mark.parametrize(
    "target,line,broken",
    [
        # The examples: the prober into plan/dns.py, the report into plan/scheduler.py.
        (
            "testbed/plan/dns.py",
            "from ..traffic import prober",
            "testbed.plan is not allowed to import testbed.traffic",
        ),
        (
            "testbed/plan/scheduler.py",
            "from ..report import build_report",
            "testbed.plan.scheduler is not allowed to import testbed.report",
        ),
        # Transitive, and hidden inside a function: still caught.
        ("testbed/spec/names.py", "def _f():\n    import subprocess", "is not allowed to import subprocess"),
        ("testbed/traffic/http.py", "from ..experiment import run", "testbed.traffic is not allowed to import"),
    ],
)
def test_a_bad_import_breaks_a_contract(tmp_path, target, line, broken):
    shutil.copytree(REPO / "testbed", tmp_path / "testbed", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / target, "a", encoding="utf-8") as f:
        f.write("\n" + line + "\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert broken in result.stdout, result.stdout[-4000:]
