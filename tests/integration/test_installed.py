"""A non-editable install runs the suite: `pip install` into a fresh venv, then, outside this
repository, `testbed conformance --limit 5` (the data comes from the package, not the checkout).

The source is copied first (testbed/ and the build files), so the build writes nothing into the
checkout, and the suite then runs from another folder, where nothing but the installed package
can provide its data.
Dependencies come from pip's configured indexes (here /opt/wheels and local mirrors; PyPI
otherwise); the test is skipped only when pip cannot fetch them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

import testbed

from .conftest import ROOT

DEBIAN_PYTHON = "/usr/bin/python3"  # the one that imports Debian's mininet (as scripts/install.sh)


def _copy_source(dest: str) -> None:
    shutil.copytree(
        os.path.join(ROOT, "testbed"),
        os.path.join(dest, "testbed"),
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(os.path.join(ROOT, name), os.path.join(dest, name))


def test_pip_install_then_conformance_outside_the_repository(tmp_path, no_leftovers):
    if not os.path.exists(DEBIAN_PYTHON):
        pytest.skip("no Debian python3")
    src, venv, work = (str(tmp_path / d) for d in ("src", "venv", "work"))
    _copy_source(src)
    os.makedirs(work)
    try:
        subprocess.run([DEBIAN_PYTHON, "-m", "venv", "--system-site-packages", venv], check=True, timeout=120)
        pip = subprocess.run(
            [os.path.join(venv, "bin", "pip"), "install", "-q", "--disable-pip-version-check", src],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if pip.returncode != 0 and ("No matching distribution" in pip.stderr or "Could not fetch" in pip.stderr):
            pytest.skip("pip cannot reach an index for the dependencies: " + pip.stderr.strip().splitlines()[-1])
        assert pip.returncode == 0, pip.stderr[-3000:]
        site = subprocess.run(
            [os.path.join(venv, "bin", "python"), "-c", "import testbed; print(testbed.__file__)"],
            cwd=work,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        assert site.startswith(venv) and "__editable__" not in site  # a real install, not the checkout
        version = subprocess.run(
            [
                os.path.join(venv, "bin", "python"),
                "-c",
                "import importlib.metadata as m; print(m.version('k8s-netemu-testbed'))",
            ],
            cwd=work,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        assert version == testbed.__version__  # setup.cfg reads the one version of testbed/__init__.py

        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        done = subprocess.run(
            [os.path.join(venv, "bin", "testbed"), "conformance", "--limit", "5", "--results", "out", "-q"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        (run,) = os.listdir(os.path.join(work, "out"))
        meta = json.load(open(os.path.join(work, "out", run, "conformance.json")))
        assert meta["counts"]["cases"] == 5 and meta["counts"]["passed"] == 5 and meta["counts"]["mismatches"] == 0
        assert meta["topology"].startswith(venv)  # the topology shipped in the package
        suite = ET.parse(os.path.join(work, "out", run, "conformance.xml")).getroot().find("testsuite")
        assert suite is not None and int(suite.get("tests")) == 5
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # a few hundred MB of dependencies
