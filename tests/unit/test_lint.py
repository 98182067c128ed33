"""The code passes ruff's lint and format check and mypy (configured in pyproject.toml), as the test command runs them.

ruff: pycodestyle, pyflakes, import order, bugbear and pyupgrade rules, with the ignores stated
in pyproject.toml. mypy: strict on the pure core, the defaults on the rest. Each check also runs
on a copy of a file with a planted defect, so that a check that silently checks nothing fails.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent


def _run(*argv: str, cwd: pathlib.Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_ruff_check_passes():
    result = _run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_ruff_format_is_applied():
    """One format everywhere (pyproject.toml's [tool.ruff.format]): `ruff format` changes nothing."""
    result = _run("ruff", "format", "--check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_ruff_format_finds_a_planted_misformat(tmp_path):
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "ugly.py").write_text("x = {  'a':1 }\n", encoding="utf-8")
    result = _run("ruff", "format", "--check", "--no-cache", ".", cwd=tmp_path)
    assert result.returncode == 1 and "ugly.py" in result.stdout


def test_ruff_check_finds_a_planted_defect(tmp_path):
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "bad.py").write_text("import os\n\n\ndef f(x=[]):\n    return x\n", encoding="utf-8")
    result = _run("ruff", "check", "--no-cache", ".", cwd=tmp_path)
    assert result.returncode == 1 and "F401" in result.stdout and "B006" in result.stdout


def test_mypy_passes():
    result = _run("python", "-m", "mypy")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Success" in result.stdout


def test_mypy_is_strict_on_the_pure_core(tmp_path):
    """An unannotated function in a pure-core module fails; the same in emu/ passes (not strict)."""
    shutil.copytree(REPO / "testbed", tmp_path / "testbed", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    for module in ("testbed/rules/model.py", "testbed/emu/runner.py"):
        with open(tmp_path / module, "a", encoding="utf-8") as f:
            f.write("\n\ndef _planted(x):\n    return x\n")
    result = _run(
        "python", "-m", "mypy", "--no-incremental", "--cache-dir", str(tmp_path / ".mypy_cache"), cwd=tmp_path
    )
    assert result.returncode == 1
    assert "testbed/rules/model.py" in result.stdout and "no-untyped-def" in result.stdout
    assert "testbed/emu/runner.py" not in result.stdout
