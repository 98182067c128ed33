"""Command-line arguments and experiment inputs are refused before anything is created
(issue 11, items 6, 8, 9 and 10): one line, exit 2, no results folder, no cluster."""

from __future__ import annotations

import pathlib
import shutil

import pytest

from testbed.cli import _check_capture_filters, main
from testbed.emu.bpf import bpf_filter_error
from testbed.errors import SpecError
from testbed.experiment.load import load_experiment

REPO = pathlib.Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "experiments" / "quickstart.yaml"


def _error_lines(capsys) -> list[str]:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line]
    assert lines and all(line.startswith("testbed: error: ") for line in lines), err
    assert "Traceback" not in err
    return lines


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["conformance", "--limit", "0"], "--limit 0 is out of range [1, 100,000]"),
        (["conformance", "--limit", "-1"], "--limit -1 is out of range"),
        (["conformance", "--timeout", "-1"], "--timeout -1 is out of range (0, 30]"),
        (["conformance", "--timeout", "nan"], "--timeout nan is out of range"),
        (["conformance", "--seed", "-4"], "--seed -4 is out of range"),
        (["conformance", "--recheck", "-1", "--no-drop-evidence"], "--recheck -1 is out of range [0, 486]"),
        (["plan", str(REPO / "topologies" / "three-nodes.yaml"), "--seed", str(2**40)], "--seed"),
        (["bench", "--mininet-hosts", "-1"], "--mininet-hosts -1 is out of range"),
    ],
)
def test_numeric_arguments_are_bounded(tmp_path, capsys, argv, fragment):
    results = tmp_path / "results"
    if argv[0] in ("conformance", "bench"):
        argv = argv + ["--results", str(results)]
    assert main(argv) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and fragment in lines[0], lines
    assert not results.exists()  # nothing half-written


@pytest.mark.parametrize(
    "where, fragment",
    [
        ("/etc/passwd", "exists and is not a directory"),
        ("{tmp}/missing/parent/results", "is not an existing directory"),
    ],
)
def test_results_root_is_checked_at_start(tmp_path, capsys, where, fragment):
    for argv in (["run", str(QUICKSTART)], ["conformance"]):
        assert main(argv + ["--results", where.format(tmp=tmp_path)]) == 2
        lines = _error_lines(capsys)
        assert len(lines) == 1 and lines[0].startswith("testbed: error: --results ") and fragment in lines[0]


def test_a_bad_experiment_is_refused_before_building(tmp_path, capsys):
    bad = tmp_path / "typo.yaml"
    bad.write_text(
        QUICKSTART.read_text().replace("../", f"{REPO}/").replace("names: [two-containers]", "names: [web-typo]")
    )
    results = tmp_path / "results"
    assert main(["run", str(bad), "--results", str(results)]) == 2
    (line,) = _error_lines(capsys)
    assert (
        f"{bad} (Experiment quickstart, step 'connectivity', probe group 'container-to-container'): "
        "spec.steps[0].probes[0].from.pods.names[0]: no pod named 'web-typo'" in line
    )
    assert not results.exists()


@pytest.mark.skipif(shutil.which("tcpdump") is None or shutil.which("unshare") is None, reason="needs tcpdump")
def test_capture_filters_are_compiled_at_load(tmp_path, capsys):
    assert bpf_filter_error("not arp") is None and bpf_filter_error("") is None
    assert "syntax error" in (bpf_filter_error("tcp portx 80") or "")
    # a host name is not looked up outside: the check runs in an empty network namespace
    assert "unknown host" in (bpf_filter_error("host example.com") or "")
    src = (REPO / "experiments" / "crafted-and-capture.yaml").read_text().replace("../", f"{REPO}/")
    bad = tmp_path / "cap.yaml"
    bad.write_text(src.replace('filter: "not arp"', 'filter: "tcp portx 80"', 1))
    with pytest.raises(SpecError) as err:  # what `testbed run` calls before building (not main: no build here)
        _check_capture_filters(load_experiment(str(bad)))
    (line,) = str(err.value).splitlines()
    assert line.startswith(
        f"{bad} (Experiment crafted-and-capture, step 'crafted'): "
        "spec.steps[0].capture[0].filter: can't parse filter expression"
    )


def test_the_check_uses_the_seed_given_on_the_command_line(tmp_path, capsys):
    """Generated pod names depend on the seed: a name valid with the file's seed is judged with --seed's."""
    from testbed.plan.build import plan_cluster
    from testbed.spec.topology import load_topology
    from testbed.spec.workloads import load_manifests

    exp = load_experiment(str(QUICKSTART))
    plan = plan_cluster(load_topology(exp.topology), load_manifests(exp.manifests), seed=exp.seed)
    web = next(p.name for p in plan.pods if p.name.startswith("web-"))
    named = tmp_path / "named.yaml"
    named.write_text(
        QUICKSTART.read_text().replace("../", f"{REPO}/").replace("names: [two-containers]", f"names: [{web}]")
    )
    load_experiment(str(named))  # valid with the file's seed
    assert main(["run", str(named), "--seed", str(exp.seed + 1), "--results", str(tmp_path / "r")]) == 2
    (line,) = _error_lines(capsys)
    assert f"no pod named '{web}' at this step" in line
