"""The fuzz corpus of issue 11's "Done when": 600+ bad inputs, each refused properly.

Every case of tests/unit/fuzz_corpus.py (generated from a seed by mutating the shipped files)
and of tests/unit/data/fuzz/ (hand-written) goes through the loading and validation path the
CLI uses — topology, manifests and plan for `testbed plan`, the experiment with its step-by-step
check for `testbed run` — and must give a SpecError (exit 2): no other exception, no hang (a
bound per case), no memory blowup (tracemalloc on the extreme cases), and every problem names
the file, the object and the field, on one bounded line. A sample goes through the real CLI.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import time
import tracemalloc

import pytest

from testbed.errors import SpecError
from testbed.experiment.load import load_experiment
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .fuzz_corpus import DEFAULT_TOPOLOGY, REPO, Case, corpus

SEED = 11
MAX_SECONDS = 30.0  # per case: a hang detector, not a speed target (typical: milliseconds)
MAX_PEAK_BYTES = 64 << 20  # per extreme case, Python allocations (tracemalloc)
MAX_LINE = 700  # characters of one error line
APP = REPO / "manifests" / "quickstart-app.yaml"
HAND_WRITTEN = sorted((pathlib.Path(__file__).parent / "data" / "fuzz").glob("*.yaml"))
# Problems about the file as a whole: the place is the file (and the line, for YAML syntax).
_FILE_LEVEL = re.compile(r"^(cannot read: |larger than |more than [\d,]+ YAML documents)")
_YAML_PLACE = re.compile(r"^line \d+, column \d+$")


def _hand_written() -> list[Case]:
    kinds = {"topo": "topology", "manifest": "manifest", "experiment": "experiment"}
    return [Case(kinds[p.name.split("-", 1)[0]], f"data/fuzz/{p.name}", p.read_bytes(), str(p)) for p in HAND_WRITTEN]


def refuse(case: Case, path: str) -> SpecError | None:
    """Load `path` as the CLI would; the SpecError raised, or None when it was accepted."""
    try:
        if case.kind == "topology":
            plan_cluster(load_topology(path), load_manifests([str(APP)]))
        elif case.kind == "manifest":
            plan_cluster(load_topology(str(DEFAULT_TOPOLOGY)), load_manifests([path]))
        else:
            load_experiment(path)
    except SpecError as err:
        return err
    return None


def _extreme(case: Case) -> bool:
    """Cases whose memory could blow up: aliases, nesting, size. (Huge strings and 20,001
    documents are not traced: their cost is linear, and PyYAML under tracemalloc is slow.)"""
    return (
        any(m in case.name for m in (":x_bomb", ":x_deep", ":x_size", ":m_containers"))
        or case.name.startswith("data/")
        or (b"&" in case.data and len(case.data) < 100_000)
    )


def _located(problem, path: str) -> str | None:
    """Why a problem does not say where, or None when it names file, object and field."""
    if problem.file != path:
        return f"names file {problem.file!r}, not the input"
    if _FILE_LEVEL.match(problem.message) or _YAML_PLACE.match(problem.path):
        return None
    if not problem.document:
        return "names no object"
    if not problem.path and not problem.document.startswith("Experiment"):
        return "names no field"
    return None


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return corpus(SEED) + _hand_written()


def test_the_corpus_is_large_and_deterministic(cases):
    assert len(cases) >= 600
    assert {c.kind for c in cases} == {"topology", "manifest", "experiment"}
    small = [(c.name, c.data) for c in corpus(SEED, structural=30, textual=10)]
    assert small == [(c.name, c.data) for c in corpus(SEED, structural=30, textual=10)]


def test_every_bad_input_is_refused_with_one_located_bounded_line(cases, tmp_path):
    failures: list[str] = []
    slowest, peak = 0.0, 0
    started = time.perf_counter()
    for i, case in enumerate(cases):
        path = str(tmp_path / f"case{i}.yaml")
        with open(path, "wb") as handle:
            handle.write(case.data)
        extreme = _extreme(case)
        if extreme:
            tracemalloc.start()
        t0 = time.perf_counter()
        try:
            err = refuse(case, path)
        except Exception as exc:  # noqa: BLE001 — any other exception is a traceback for the user
            failures.append(f"{case.name}: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        finally:
            seconds = time.perf_counter() - t0
            if extreme:
                peak = max(peak, tracemalloc.get_traced_memory()[1])
                if tracemalloc.get_traced_memory()[1] > MAX_PEAK_BYTES:
                    failures.append(f"{case.name}: {tracemalloc.get_traced_memory()[1] >> 20} MiB")
                tracemalloc.stop()
        slowest = max(slowest, seconds)
        if seconds > MAX_SECONDS:
            failures.append(f"{case.name}: {seconds:.1f} s")
        if err is None:
            failures.append(f"{case.name}: accepted")
            continue
        for problem in err.problems:
            line = str(problem)
            why = _located(problem, path)
            if why:
                failures.append(f"{case.name}: {why}: {line[:200]}")
            if len(line) > MAX_LINE or "\n" in line:
                failures.append(f"{case.name}: a line of {len(line)} characters")
    total = time.perf_counter() - started
    print(
        f"\nfuzz corpus: {len(cases)} cases in {total:.1f} s, slowest {slowest * 1000:.0f} ms, "
        f"peak {peak / 2**20:.1f} MiB on the extreme cases; {len(failures)} failures"
    )
    assert not failures, "\n".join(failures[:40])


# The real CLI, on a sample: exit 2, one line per problem, nothing on stdout, no traceback.
_SAMPLE = (
    "data/fuzz/",
    ":x_bomb",
    ":x_deep",
    ":x_binary",
    ":x_truncated",
    ":x_size",
    ":t_bad_subnet",
    ":m_replicas",
    ":m_name",
    ":e_unknown_name",
    ":e_wrong_type",
    ":e_missing_file",
    ":e_capture",
)


def test_a_sample_through_the_cli(cases, tmp_path):
    picked: dict[str, Case] = {}
    for case in cases:
        for marker in _SAMPLE:
            if marker in case.name and (marker not in picked or marker == "data/fuzz/"):
                picked[marker if marker != "data/fuzz/" else case.name] = case
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for n, case in enumerate(picked.values()):
        path = str(tmp_path / f"cli{n}.yaml")
        with open(path, "wb") as handle:
            handle.write(case.data)
        assert refuse(case, path) is not None, case.name  # never start a run that would build
        if case.kind == "topology":
            argv = ["plan", path, "-f", str(APP)]
        elif case.kind == "manifest":
            argv = ["plan", str(DEFAULT_TOPOLOGY), "-f", path]
        else:
            argv = ["run", path, "--results", str(tmp_path / "results")]
        proc = subprocess.run(
            [sys.executable, "-m", "testbed", *argv], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path
        )
        lines = proc.stderr.splitlines()
        assert proc.returncode == 2, (case.name, proc.stderr[-2000:])
        assert proc.stdout == "" and lines and "Traceback" not in proc.stderr, (case.name, proc.stderr[-2000:])
        assert all(line.startswith(f"testbed: error: {path}") and len(line) <= MAX_LINE + 20 for line in lines), (
            case.name,
            lines[:5],
        )
    assert not (tmp_path / "results").exists()
    assert len(picked) >= 12
