"""How runs are reported to a person (issue 11 items 6, 7 and 14), without root: the NAT column
says what was expected and seen, steps keep the run's order, two experiments are not compared
probe by probe, an aborted run's verdict is its cause, output cut short ends quietly, and the
same cause (no root) exits with the same code everywhere."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from testbed.analysis import from_rows, nat_table
from testbed.cli import _print_results, main
from testbed.experiment.records import summarize
from testbed.experiment.results import summary_markdown
from testbed.report import build_report
from testbed.report.compare import compare_runs

from .synthetic_runs import row, synthetic_rows, table, write_run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_nat_column_says_expected_and_seen():
    node_ips = "192.168.1.2 192.168.1.3 10.244.1.1 10.244.2.1"
    rows = [
        row(
            src_kind="host",
            src_name="laptop",
            src_ip="192.168.1.10",
            dst_name="a",
            communication="external-to-service (nodePort)",
            expected_src_ips=node_ips,
            seen_src_ip="192.168.1.2",
        )
        for _ in range(60)
    ]
    rows += [row(src_name="a", dst_name="c") for _ in range(3)]
    rows += [row(src_name="b", dst_name="c", seen_src_ip="192.168.1.2")]  # SNATed where none was expected
    table_ = nat_table(from_rows(rows)).set_index("communication")
    nodeport = table_.loc["external-to-service (nodePort)"]
    assert nodeport["expected_and_seen"] == "expected SNAT; seen SNAT 60/60"
    assert nodeport["verdict"] == "yes" and nodeport["saw_sender_ip"] == 0  # as expected, not "NAT-free"
    across = table_.loc["pod-to-pod (across nodes)"]
    assert across["expected_and_seen"] == "expected NAT-free; seen NAT-free 3/4, SNAT 1/4"
    assert nat_table(from_rows([row(src_name="a", dst_name="c", outcome="timeout")]))["expected_and_seen"][0] == "—"


def test_summary_lists_steps_in_the_runs_order():
    rows = [
        row(step="zeta", src_name="a", dst_name="b"),
        row(step="alpha", src_name="a", dst_name="b"),
        row(step="zeta", src_name="a", dst_name="c"),
    ]
    assert [t["step"] for t in summarize(rows)] == ["zeta", "zeta", "alpha"]


def test_compare_of_two_experiments_says_so(tmp_path):
    a = write_run(str(tmp_path / "a"), synthetic_rows(), run_id="run-a")
    b = write_run(
        str(tmp_path / "b"),
        synthetic_rows(),
        run_id="run-b",
        meta={"experiment": {"name": "other", "file": "experiments/other.yaml"}},
    )
    text = compare_runs(a, b)
    assert "**A and B ran different experiments (synthetic and other)**" in text
    counts = table(text, "Counts per communication and protocol")
    assert counts and {r["changed"] for r in counts} == {"only in A", "only in B"}
    assert all(r["step"].startswith(("synthetic: ", "other: ")) for r in counts)
    n = len(synthetic_rows())
    assert f"{n} probe(s) only in A and {n} only in B (not compared)" in text
    same = compare_runs(a, write_run(str(tmp_path / "c"), synthetic_rows(), run_id="run-c"))
    assert "different experiments" not in same and "only in" not in same


def test_an_aborted_run_has_its_cause_as_verdict(tmp_path):
    cause = "the agent died (exit -9) (during step baseline's probes): its log is kept in r/logs/agent.log"
    path = write_run(str(tmp_path / "r"), synthetic_rows(), meta={"aborted": cause, "passed": False})
    report = open(build_report(path)[0], encoding="utf-8").read()
    assert f"**Verdict: ABORTED** — {cause}" in report and "**Verdict: FAIL**" not in report
    meta = {
        "experiment": {"name": "x"},
        "run_id": "r",
        "passed": False,
        "aborted": cause,
        "seed": 0,
        "cluster": {"nodes": 3, "pods": 6, "routing": "host-gw"},
        "timings": {},
    }
    summary = summary_markdown(meta, synthetic_rows())
    assert f"**Verdict: ABORTED** — {cause}" in summary and "Before it stopped: " in summary


def test_terminal_shows_the_conformance_verdict_without_an_empty_table_header(tmp_path, capsys):
    (tmp_path / "conformance.md").write_text(
        "# NetworkPolicy conformance — run r\n\n**PASS** — 5 cases\n\n"
        "Seed 0; topology t.\n\n| feature | cases |\n|---|---:|\n| a | 1 |\n"
    )
    _print_results(str(tmp_path), "conformance.md", head_only=True)
    out = capsys.readouterr().out
    assert "**PASS** — 5 cases" in out and "|" not in out and out.endswith(f"results: {tmp_path}\n")


def test_output_cut_short_ends_quietly():
    """`testbed plan -o json | head -1`: no BrokenPipeError traceback, SIGPIPE's status (141)."""
    import fcntl

    read, write = os.pipe()
    fcntl.fcntl(write, 1031, 4096)  # F_SETPIPE_SZ: one page, so the 13 kB plan cannot fit in the pipe at once
    plan = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "testbed",
            "plan",
            os.path.join(REPO, "topologies/three-nodes.yaml"),
            "-f",
            os.path.join(REPO, "manifests/quickstart-app.yaml"),
            "-o",
            "json",
        ],
        stdout=write,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    os.close(write)
    with os.fdopen(read, "rb") as reader:
        reader.read(10)  # then the reader goes away, as head does
    _, err = plan.communicate(timeout=60)
    assert plan.returncode == 141 and err == b"", err


@pytest.mark.parametrize("argv", [["bench", "--quick"], ["clean"], ["clean", "--stale"]])
def test_no_root_exits_2_everywhere(argv, monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("testbed: error: `testbed ") and "needs root" in err and len(err.splitlines()) == 1


def test_explain_documents_its_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    assert "exit status: 0 the flow is allowed (or --pod), 3 it is blocked" in capsys.readouterr().out
