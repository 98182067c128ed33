"""Load a run's tidy probe dataset into a typed pandas DataFrame (pure; first stage of analysis/).

Pipeline: experiment/ writes results/<run>/probes.parquet and probes.csv (one row per probe,
columns documented in testbed.experiment.records.COLUMNS) -> **load_dataset()** here ->
reachability, nat, verdict, spread and performance -> report/.

Whatever the source (parquet, CSV, a list of row dicts in tests), normalize() gives the same
frame: every documented column present, strings as strings ('' for none), integers as int64,
floats as float64 (NaN for none; throughput_mbps too, added if absent), outcome_ok as bool
and nat_free as the nullable boolean. Columns the schema does not know are kept as they are.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from ..errors import TestbedError
from ..experiment.records import COLUMNS

INT_COLUMNS = ("attempt", "service_port", "port", "seen_src_port")
FLOAT_COLUMNS = ("timestamp", "latency_ms", "throughput_mbps")  # throughput_mbps: NaN unless iperf3 measured
BOOL_COLUMNS = ("outcome_ok",)
NULLABLE_BOOL_COLUMNS = ("nat_free", "drop_as_traced")
STRING_COLUMNS = tuple(
    c for c in COLUMNS if c not in INT_COLUMNS + FLOAT_COLUMNS + BOOL_COLUMNS + NULLABLE_BOOL_COLUMNS
)
ALL_COLUMNS = tuple(dict.fromkeys(list(COLUMNS) + list(FLOAT_COLUMNS)))

# sources and destinations sort pods first, then nodes, then external hosts, then the rest
KIND_ORDER = {"pod": 0, "service": 1, "node": 2, "external": 3}
PROTOCOL_ORDER = {"TCP": 0, "UDP": 1, "SCTP": 2, "ICMP": 3}


class ResultsError(TestbedError):
    """A results folder that cannot be read (missing, or no dataset in it): bad input, exit code 2."""

    exit_code = 2


def _to_bool(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return pd.NA
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        return pd.NA
    return bool(value)


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with every documented column, each with its proper dtype."""
    out = frame.copy()
    n = len(out)
    for col in STRING_COLUMNS:
        if col not in out.columns:
            out[col] = [""] * n
        values = out[col].astype(object).where(out[col].notna(), "")
        out[col] = pd.Series([str(v) for v in values], index=out.index, dtype=object).astype(str)
    for col in INT_COLUMNS:
        if col not in out.columns:
            out[col] = 0
        out[col] = pd.to_numeric(out[col], errors="coerce").fillna(0).astype("int64")
    for col in FLOAT_COLUMNS:
        if col not in out.columns:
            out[col] = float("nan")
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    for col in BOOL_COLUMNS:
        if col not in out.columns:
            out[col] = False
        out[col] = (
            pd.Series([_to_bool(v) for v in out[col]], index=out.index, dtype="boolean").fillna(False).astype(bool)
        )
    for col in NULLABLE_BOOL_COLUMNS:
        if col not in out.columns:
            out[col] = pd.NA
        out[col] = pd.Series([_to_bool(v) for v in out[col]], index=out.index, dtype="boolean")
    ordered = list(ALL_COLUMNS) + [c for c in out.columns if c not in ALL_COLUMNS]
    return out[ordered].reset_index(drop=True)


def from_rows(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A typed frame from row dicts (as testbed.experiment.records.make_row builds them)."""
    rows = list(rows)
    extra = sorted({k for r in rows for k in r} - set(ALL_COLUMNS))
    return normalize(pd.DataFrame(rows, columns=list(ALL_COLUMNS) + extra))


def empty() -> pd.DataFrame:
    return from_rows([])


def load_dataset(run_dir: str) -> pd.DataFrame:
    """probes.parquet (or probes.csv if there is no parquet file, or it cannot be read) of a run folder."""
    if not os.path.isdir(run_dir):
        raise ResultsError(f"{run_dir}: no such results folder")
    parquet = os.path.join(run_dir, "probes.parquet")
    csv = os.path.join(run_dir, "probes.csv")
    problem = ""
    if os.path.isfile(parquet):
        try:
            return normalize(pd.read_parquet(parquet))
        except (ImportError, OSError, ValueError) as exc:
            problem = f" (probes.parquet unreadable: {exc})"
    if os.path.isfile(csv):
        try:
            frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
        except pd.errors.EmptyDataError:
            frame = pd.DataFrame(columns=list(COLUMNS))
        except (OSError, ValueError) as exc:
            raise ResultsError(f"{csv}: cannot read the dataset: {exc}") from exc
        return normalize(frame)
    raise ResultsError(f"{run_dir}: not a results folder: no probes.parquet or probes.csv in it{problem}")


def load_meta(run_dir: str) -> dict[str, Any]:
    """run.json of a run folder ({} if absent); a malformed file is an error."""
    path = os.path.join(run_dir, "run.json")
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: cannot read run metadata: {exc}") from exc
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: run metadata must be a JSON object")
    return data


def load_plan(run_dir: str) -> dict[str, Any]:
    """plan.json of a run folder ({} if absent or unreadable: it only adds detail)."""
    path = os.path.join(run_dir, "plan.json")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# -- labels for matrix axes --------------------------------------------------------------------


def party_label(kind: str, name: str, namespace: str) -> str:
    """How one end of a probe is shown on a matrix axis."""
    if kind in ("node", "external"):
        return f"{name} ({kind})"
    if kind == "service":
        base = name if namespace in ("", "default") else f"{namespace}/{name}"
        return f"{base} (svc)"
    return name if namespace in ("", "default") else f"{namespace}/{name}"


def src_labels(frame: pd.DataFrame) -> pd.Series:
    return pd.Series(
        [party_label(k, n, ns) for k, n, ns in zip(frame["src_kind"], frame["src_name"], frame["src_namespace"])],
        index=frame.index,
        dtype=object,
    )


def dst_labels(frame: pd.DataFrame, with_port: bool = True) -> pd.Series:
    """Destination labels; a probe through a Service is shown as the Service and its port."""
    out = []
    for row in frame[["dst_kind", "dst_name", "dst_namespace", "service", "service_port", "port"]].itertuples(
        index=False
    ):
        if row.service:
            label = party_label("service", row.service, row.dst_namespace)
            port = row.service_port or row.port
        else:
            label = party_label(row.dst_kind or "pod", row.dst_name, row.dst_namespace)
            port = row.port
        out.append(f"{label}:{port}" if with_port else label)
    return pd.Series(out, index=frame.index, dtype=object)


def src_order(frame: pd.DataFrame) -> list[str]:
    """Source labels in display order: pods, nodes, external hosts; by name within each."""
    keys = {
        party_label(k, n, ns): (KIND_ORDER.get(k, 9), party_label(k, n, ns))
        for k, n, ns in zip(frame["src_kind"], frame["src_name"], frame["src_namespace"])
    }
    return sorted(keys, key=lambda label: keys[label])


def dst_order(frame: pd.DataFrame, with_port: bool = True) -> list[str]:
    labels = dst_labels(frame, with_port)
    keys: dict[str, tuple[Any, ...]] = {}
    for label, kind, svc, port, sport in zip(
        labels, frame["dst_kind"], frame["service"], frame["port"], frame["service_port"]
    ):
        rank = KIND_ORDER["service"] if svc else KIND_ORDER.get(kind or "pod", 9)
        base = label.rsplit(":", 1)[0] if with_port else label
        keys[label] = (rank, base, (sport or port) if svc else port)
    return sorted(keys, key=lambda label: keys[label])


def steps_in_order(frame: pd.DataFrame) -> list[str]:
    """Step names in the order the run went through them (first appearance)."""
    return list(dict.fromkeys(frame["step"]))


def protocols_in_order(values: Iterable[str]) -> list[str]:
    return sorted(set(values), key=lambda p: (PROTOCOL_ORDER.get(p, 9), p))


# scenario 001's kinds of communication, in the order a reader expects them; others follow by name
COMMUNICATION_ORDER = (
    "container-to-container",
    "pod-to-pod (same node)",
    "pod-to-pod (across nodes)",
    "pod-to-pod",
    "node-to-pod (same node)",
    "node-to-pod (across nodes)",
    "node-to-pod",
    "pod-to-service",
    "node-to-service",
    "external-to-pod",
    "external-to-service",
)


def communications_in_order(values: Iterable[str]) -> list[str]:
    rank = {c: i for i, c in enumerate(COMMUNICATION_ORDER)}
    return sorted(set(values), key=lambda c: (rank.get(c, len(rank)), c))
