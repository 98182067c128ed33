"""Reachability matrices: source x destination, per step and protocol (or port) (pure).

Pipeline: dataset.load_dataset() -> **reachability_matrix()** -> report/ heatmaps and tables.

A cell gathers every probe of the step from one source to one destination (pod, or Service,
with its port) over one protocol. It holds the number of probes, how many connected, the
share connected, the outcome (the one outcome every probe had, or "mixed"), and, where the
rows carry an expectation, the share expected to connect, the difference observed minus
expected (+1: expected blocked, all connected; -1: expected open, none connected) and the
number of probes whose outcome was not the expected one. Axes are sorted: pods, then nodes,
then external hosts, by name; destinations by name then port.

A dual-stack run (rows of family IPv6, issue 15) gets one matrix per step, protocol and address
family: a pod pair probed over IPv4 and over IPv6 is two cells, in two matrices, never merged.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..experiment.records import outcome_matches
from .dataset import dst_labels, dst_order, protocols_in_order, src_labels, src_order, steps_in_order


@dataclass(frozen=True)
class Matrix:
    """Reachability of one step and protocol (and port, if one was chosen); frames share axes."""

    step: str
    protocol: str
    port: int | None
    probes: pd.DataFrame  # int: probes per cell (0 where none was sent)
    connected: pd.DataFrame  # int: probes that connected
    share: pd.DataFrame  # float: connected / probes (NaN where none was sent)
    outcome: pd.DataFrame  # str: the outcome of every probe, "mixed", or "" where none
    expected: pd.DataFrame  # float: share expected to connect (NaN where no expectation)
    difference: pd.DataFrame  # float: observed share - expected share, over probes with an expectation
    mismatches: pd.DataFrame  # int: probes whose outcome was not the expected one
    family: str = ""  # IPv4 | IPv6 in a run that probed over IPv6 ("" otherwise: every row IPv4)

    @property
    def has_expectations(self) -> bool:
        return bool(self.expected.notna().to_numpy().any())

    @property
    def title(self) -> str:
        port = f"/{self.port}" if self.port is not None else ""
        return f"{self.step} — {self.protocol}{port}" + (f" over {self.family}" if self.family else "")


def has_expectation(frame: pd.DataFrame) -> pd.Series:
    return frame["expected_outcome"].astype(str) != ""


def as_expected(frame: pd.DataFrame) -> pd.Series:
    """Per row: the outcome matches the expectation (False where there is none)."""
    return pd.Series(
        [bool(e) and outcome_matches(e, o) for e, o in zip(frame["expected_outcome"], frame["outcome"])],
        index=frame.index,
        dtype=bool,
    )


def families_in(frame: pd.DataFrame) -> list[str]:
    """The address families to split by: [""] (no split) unless some row went over IPv6."""
    if "family" not in frame.columns or not (frame["family"] == "IPv6").any():
        return [""]
    return [f for f in ("IPv4", "IPv6") if (frame["family"] == f).any()]


def _select(
    frame: pd.DataFrame, step: str | None, protocol: str | None, port: int | None, family: str = ""
) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    if family:
        mask &= frame["family"] == family
    if step is not None:
        mask &= frame["step"] == step
    if protocol is not None:
        mask &= frame["protocol"] == protocol
    if port is not None:
        svc = frame["service"] != ""
        dport = frame["port"].where(~svc | (frame["service_port"] == 0), frame["service_port"])
        mask &= dport == port
    return frame[mask]


def reachability_matrix(
    frame: pd.DataFrame,
    step: str | None = None,
    protocol: str | None = None,
    port: int | None = None,
    family: str = "",
) -> Matrix:
    """The matrix of the rows of `step`, `protocol`, `port` and address `family` (None, "": all).

    Destination labels carry the port ("web-1:80") unless one port was chosen.
    """
    rows = _select(frame, step, protocol, port, family)
    with_port = port is None
    work = pd.DataFrame(
        {
            "src": src_labels(rows),
            "dst": dst_labels(rows, with_port=with_port),
            "conn": (rows["outcome"] == "connected").astype(int),
            "outcome": rows["outcome"].astype(str),
            "has_exp": has_expectation(rows).astype(int),
            "exp_conn": (rows["expected_outcome"] == "connected").astype(int),
            "bad": (has_expectation(rows) & ~as_expected(rows)).astype(int),
        },
        index=rows.index,
    )
    work["obs_exp_conn"] = work["conn"] * work["has_exp"]
    work["exp_conn"] = work["exp_conn"] * work["has_exp"]
    index, columns = src_order(rows), dst_order(rows, with_port=with_port)

    def pivot(values: pd.Series, fill: object) -> pd.DataFrame:
        table = values.unstack("dst") if len(values) else pd.DataFrame()
        table = table.reindex(index=index, columns=columns)
        table.index.name, table.columns.name = "source", "destination"
        return table.fillna(fill) if fill is not None else table

    grouped = work.groupby(["src", "dst"], sort=False)
    probes = pivot(grouped.size(), 0).astype("int64")
    connected = pivot(grouped["conn"].sum(), 0).astype("int64")
    with_exp = pivot(grouped["has_exp"].sum(), 0).astype("int64")
    exp_conn = pivot(grouped["exp_conn"].sum(), 0).astype("int64")
    obs_exp_conn = pivot(grouped["obs_exp_conn"].sum(), 0).astype("int64")
    mismatches = pivot(grouped["bad"].sum(), 0).astype("int64")
    share = (connected / probes.where(probes > 0)).astype("float64")
    expected = (exp_conn / with_exp.where(with_exp > 0)).astype("float64")
    difference = (obs_exp_conn / with_exp.where(with_exp > 0) - expected).astype("float64")
    first, kinds = grouped["outcome"].first(), grouped["outcome"].nunique()
    outcome = pivot(first.where(kinds == 1, "mixed"), None)
    outcome = outcome.astype(object).where(outcome.notna(), "").astype(object)
    return Matrix(
        step=step if step is not None else "",
        protocol=protocol if protocol is not None else "",
        port=port,
        probes=probes,
        connected=connected,
        share=share,
        outcome=outcome,
        expected=expected,
        difference=difference,
        mismatches=mismatches,
        family=family,
    )


def reachability_matrices(frame: pd.DataFrame, per_port: bool = False) -> list[Matrix]:
    """One matrix per step and protocol (and per port if asked), steps in run order; per address
    family too when some probe went over IPv6."""
    out: list[Matrix] = []
    families = families_in(frame)
    for step in steps_in_order(frame):
        for family in families:
            in_step = frame[(frame["step"] == step) & ((frame["family"] == family) if family else True)]
            for protocol in protocols_in_order(in_step["protocol"]):
                if not per_port:
                    out.append(reachability_matrix(frame, step, protocol, family=family))
                    continue
                rows = in_step[in_step["protocol"] == protocol]
                svc = rows["service"] != ""
                ports = rows["port"].where(~svc | (rows["service_port"] == 0), rows["service_port"])
                for port in sorted(set(int(p) for p in ports)):
                    out.append(reachability_matrix(frame, step, protocol, port, family))
    return out


def share_matrix(
    frame: pd.DataFrame, step: str | None = None, protocol: str | None = None, port: int | None = None
) -> pd.DataFrame:
    """Share of probes connected per source x destination (NaN: no probe)."""
    return reachability_matrix(frame, step, protocol, port).share


def outcome_matrix(
    frame: pd.DataFrame, step: str | None = None, protocol: str | None = None, port: int | None = None
) -> pd.DataFrame:
    """The outcome per source x destination ("mixed" when probes disagree, "" where none)."""
    return reachability_matrix(frame, step, protocol, port).outcome


def difference_matrix(
    frame: pd.DataFrame, step: str | None = None, protocol: str | None = None, port: int | None = None
) -> pd.DataFrame:
    """Observed minus expected share connected (NaN where no expectation)."""
    return reachability_matrix(frame, step, protocol, port).difference
