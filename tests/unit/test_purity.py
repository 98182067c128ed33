"""The pure core stays pure: no kernel, subprocess or Mininet import in the modules listed here.

Imports are read with the ast module (nothing is executed), relative imports are resolved
against the module's package, and string imports (__import__, importlib.import_module) count too.
Add a package or module to PURE when it joins the pure core; missing entries are skipped.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

PURE = (
    "testbed/spec",
    "testbed/plan",
    "testbed/errors.py",
    "testbed/experiment/model.py",
    "testbed/traffic/sctp.py",
    "testbed/experiment/load.py",
    "testbed/experiment/expand.py",
    "testbed/experiment/records.py",
    "testbed/agent/reply.py",
    "testbed/agent/config.py",
    "testbed/agent/sctp_responder.py",
    "testbed/shell/grammar.py",
    "testbed/shell/selectors.py",
    "testbed/shell/objects.py",
    "testbed/shell/output.py",
    "testbed/shell/describe.py",
    "testbed/shell/execns.py",
    "testbed/shell/mininet.py",
    "testbed/shell/kubectl.py",
    "testbed/shell/core.py",
    "testbed/views.py",
    "testbed/analysis",
    "testbed/report",
    "testbed/netpol",
    "testbed/conformance/xyz.py",
    "testbed/conformance/steps.py",
    "testbed/conformance/decode.py",
    "testbed/conformance/dsl.py",
    "testbed/conformance/tags.py",
    "testbed/conformance/families.py",
    "testbed/conformance/generator.py",
    "testbed/conformance/check.py",
    "testbed/conformance/results.py",
    "testbed/conformance/changes.py",
    "testbed/conformance/junit.py",
    "testbed/conformance/resources.py",
    "testbed/spec/netpol.py",
    "testbed/kubeproxy",
    "testbed/rules",
    "testbed/rulepath.py",
    "testbed/spec/ingress.py",
    "testbed/ingress",
)
FORBIDDEN = ("subprocess", "mininet", "pyroute2", "ctypes", "socket", "testbed.emu")

# Known violations awaiting a fix by the module's owner. strict: once fixed, the test XPASSes and
# fails, so the entry must be removed then.
KNOWN_VIOLATIONS: dict[str, str] = {}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every absolute module name `source` (the code of `module`) imports, or may import."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.add(prefix)
            names.update(f"{prefix}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in ("__import__", "import_module"):
                names.add(node.args[0].value)
    return names


def forbidden_in(names: set[str]) -> set[str]:
    return {n for n in names for bad in FORBIDDEN if n == bad or n.startswith(bad + ".")}


def _pure_files() -> list[pathlib.Path]:
    files: list[pathlib.Path] = []
    for entry in PURE:
        path = REPO / entry
        if path.is_dir():
            files.extend(sorted(path.rglob("*.py")))
        elif path.is_file():
            files.append(path)
    return files


def test_the_core_packages_exist():
    assert (REPO / "testbed" / "spec").is_dir() and (REPO / "testbed" / "plan").is_dir()
    assert len(_pure_files()) >= 15


def _params() -> list:
    out = []
    for path in _pure_files():
        rel = str(path.relative_to(REPO))
        marks = [pytest.mark.xfail(reason=KNOWN_VIOLATIONS[rel], strict=True)] if rel in KNOWN_VIOLATIONS else []
        out.append(pytest.param(path, id=rel, marks=marks))
    return out


@pytest.mark.parametrize("path", _params())
def test_pure_module_imports_nothing_impure(path):
    names = imported_names(path.read_text(encoding="utf-8"), _module_name(path), path.name == "__init__.py")
    assert not forbidden_in(names), f"{path.relative_to(REPO)} imports {sorted(forbidden_in(names))}"


# -- the scanner itself must catch what it is meant to catch ---------------------------------

@pytest.mark.parametrize("source,module", [
    ("import subprocess", "testbed.spec.x"),
    ("import os, socket", "testbed.spec.x"),
    ("from mininet.net import Mininet", "testbed.plan.x"),
    ("import pyroute2.netlink as nl", "testbed.plan.x"),
    ("from ctypes import CDLL", "testbed.plan.x"),
    ("from testbed.emu import runner", "testbed.plan.x"),
    ("import testbed.emu.runner", "testbed.plan.x"),
    ("from ..emu import runner", "testbed.plan.x"),
    ("from .. import emu", "testbed.plan.x"),
    ("from ..emu.runner import Runner", "testbed.plan.x"),
    ("from ... import emu", "testbed.spec.sub.x"),
    ("def f():\n    import subprocess\n    return subprocess", "testbed.spec.x"),
    ("try:\n    import socket\nexcept ImportError:\n    pass", "testbed.spec.x"),
    ("mod = __import__('subprocess')", "testbed.spec.x"),
    ("import importlib\nm = importlib.import_module('testbed.emu.runner')", "testbed.spec.x"),
])
def test_scanner_catches_impure_imports(source, module):
    assert forbidden_in(imported_names(source, module))


@pytest.mark.parametrize("source,module", [
    ("import ipaddress, json, hashlib", "testbed.plan.x"),
    ("from ..spec.model import ClusterSpec", "testbed.plan.x"),
    ("from ..errors import SpecError", "testbed.spec.x"),
    ("from . import routing", "testbed.plan.x"),
    ("import socketserver", "testbed.plan.x"),      # a different module, not socket
    ("from testbed.emulator import x", "testbed.plan.x"),
])
def test_scanner_allows_pure_imports(source, module):
    assert not forbidden_in(imported_names(source, module))


def test_relative_imports_resolve_against_the_package():
    assert "testbed.spec.model" in imported_names("from ..spec.model import X", "testbed.plan.build")
    assert "testbed.plan.routing" in imported_names("from . import routing", "testbed.plan.build")
    assert "testbed.plan.routing" in imported_names("from . import routing", "testbed.plan", is_package=True)
