"""The run's verdict: expected against observed outcomes, the list of mismatches (pure).

Pipeline: dataset.load_dataset() -> **confusion(), mismatches(), run_verdict(), summary_table()**
-> report/ and compare.

Expectations come from the experiment (a truth table or, later, the policy oracle), one per
row in expected_outcome: connected, refused, timeout, unreachable, or blocked (timeout or
refused). "Expected allowed" means expected_outcome == connected; every other expectation is
"expected blocked". Rows without an expectation are left out of the confusion counts and
never fail a run. A row is a mismatch when its outcome is not the expected one
(testbed.experiment.records.outcome_matches) or when its server saw a NAT'd source.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .dataset import communications_in_order, dst_labels, protocols_in_order, src_labels, steps_in_order
from .nat import nat_checked, nat_free
from .reachability import as_expected, has_expectation

CONFUSION_INDEX = ("expected allowed", "expected blocked")
CONFUSION_COLUMNS = ("connected", "not connected")
MISMATCH_COLUMNS = (
    "step",
    "source",
    "destination",
    "protocol",
    "port",
    "communication",
    "outcome",
    "expected",
    "seen_src_ip",
    "expected_src_ips",
    "problem",
)
SUMMARY_COLUMNS = (
    "step",
    "communication",
    "protocol",
    "probes",
    "connected",
    "refused",
    "timeout",
    "other",
    "expected",
    "as_expected",
    "nat_checked",
    "nat_free",
)


@dataclass(frozen=True)
class Verdict:
    passed: bool
    probes: int
    with_expectation: int
    as_expected: int
    nat_checked: int
    nat_violations: int
    mismatches: int

    @property
    def word(self) -> str:
        return "PASS" if self.passed else "FAIL"


def confusion(frame: pd.DataFrame) -> pd.DataFrame:
    """2 x 2 counts: expected allowed/blocked (rows) x observed connected/not (columns)."""
    exp = has_expectation(frame)
    allowed = frame["expected_outcome"] == "connected"
    conn = frame["outcome"] == "connected"
    counts = [
        [int((exp & allowed & conn).sum()), int((exp & allowed & ~conn).sum())],
        [int((exp & ~allowed & conn).sum()), int((exp & ~allowed & ~conn).sum())],
    ]
    table = pd.DataFrame(counts, index=list(CONFUSION_INDEX), columns=list(CONFUSION_COLUMNS), dtype="int64")
    table.index.name = "expectation"
    return table


def confusion_by_step(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {step: confusion(frame[frame["step"] == step]) for step in steps_in_order(frame)}


def mismatch_mask(frame: pd.DataFrame) -> pd.Series:
    outcome_bad = has_expectation(frame) & ~as_expected(frame)
    nat_bad = nat_free(frame).fillna(True) == False  # noqa: E712 (elementwise)
    return (outcome_bad | nat_bad).astype(bool)


def mismatches(frame: pd.DataFrame) -> pd.DataFrame:
    """Every row not as expected (outcome) or NAT'd, in run order, with readable ends."""
    outcome_bad = has_expectation(frame) & ~as_expected(frame)
    nat_bad = (nat_free(frame).fillna(True) == False).astype(bool)  # noqa: E712
    mask = outcome_bad | nat_bad
    rows = frame[mask]
    problems = [
        ", ".join(p for p, on in (("outcome", o), ("NAT", n)) if on) for o, n in zip(outcome_bad[mask], nat_bad[mask])
    ]
    out = pd.DataFrame(
        {
            "step": rows["step"],
            "source": [f"{lbl} ({ip})" if ip else lbl for lbl, ip in zip(src_labels(rows), rows["src_ip"])],
            "destination": [
                f"{lbl} ({ip})" if ip else lbl for lbl, ip in zip(dst_labels(rows, with_port=False), rows["dst_ip"])
            ],
            "protocol": rows["protocol"],
            "port": rows["port"],
            "communication": rows["communication"],
            "outcome": rows["outcome"],
            "expected": rows["expected_outcome"],
            "seen_src_ip": rows["seen_src_ip"],
            "expected_src_ips": rows["expected_src_ips"],
            "problem": problems,
        },
        columns=list(MISMATCH_COLUMNS),
    )
    return out.reset_index(drop=True)


def run_verdict(frame: pd.DataFrame) -> Verdict:
    """PASS when there are probes, every expectation is met and no server saw a NAT'd source."""
    exp = has_expectation(frame)
    ok = int((exp & as_expected(frame)).sum())
    free = nat_free(frame)
    checked = int(nat_checked(frame).sum())
    violations = int((free.fillna(True) == False).sum())  # noqa: E712
    n_bad = int(mismatch_mask(frame).sum())
    return Verdict(
        passed=len(frame) > 0 and n_bad == 0,
        probes=len(frame),
        with_expectation=int(exp.sum()),
        as_expected=ok,
        nat_checked=checked,
        nat_violations=violations,
        mismatches=n_bad,
    )


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per step, communication and protocol: outcome counts, expectations met, NAT-free counts."""
    exp = has_expectation(frame)
    ok = as_expected(frame)
    free = nat_free(frame)
    checked = nat_checked(frame)
    rows = []
    for step in steps_in_order(frame):
        in_step = frame["step"] == step
        for comm in communications_in_order(frame.loc[in_step, "communication"]):
            in_comm = in_step & (frame["communication"] == comm)
            for proto in protocols_in_order(frame.loc[in_comm, "protocol"]):
                m = in_comm & (frame["protocol"] == proto)
                outcome = frame.loc[m, "outcome"]
                rows.append(
                    {
                        "step": step,
                        "communication": comm,
                        "protocol": proto,
                        "probes": int(m.sum()),
                        "connected": int((outcome == "connected").sum()),
                        "refused": int((outcome == "refused").sum()),
                        "timeout": int((outcome == "timeout").sum()),
                        "other": int((~outcome.isin(["connected", "refused", "timeout"])).sum()),
                        "expected": int(exp[m].sum()),
                        "as_expected": int((exp & ok)[m].sum()),
                        "nat_checked": int(checked[m].sum()),
                        "nat_free": int(free[m].fillna(False).sum()),
                    }
                )
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    for col in SUMMARY_COLUMNS[3:]:
        table[col] = table[col].astype("int64")
    return table
