"""Latency percentiles and throughput per kind of communication and protocol (pure).

Pipeline: dataset.load_dataset() -> **latency_percentiles(), throughput_summary()** -> report/.

Latency is the latency_ms of connected probes (time from sending to the reply; refused probes
also carry a time, that of the reset, which says nothing about the path's latency and is left
out, as are iperf3 rows, whose RTT is taken under load). Percentiles interpolate linearly
between samples (numpy's and pandas' default), so they equal np.percentile over the same raw
values. Throughput reads the optional throughput_mbps
column (iperf3 runs); without it, or with no value in it, throughput_summary() returns None.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .dataset import communications_in_order, protocols_in_order

LATENCY_COLUMNS = ("communication", "protocol", "samples", "p50", "p90", "p99", "max")
THROUGHPUT_COLUMNS = ("communication", "protocol", "samples", "mean", "min", "p50", "max")


def latency_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Connected probes that carry a latency (throughput runs excluded: their RTT is taken under load)."""
    return frame[(frame["outcome"] == "connected") & frame["latency_ms"].notna() & (frame["method"] != "iperf3")]


def _groups(frame: pd.DataFrame) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for comm in communications_in_order(frame["communication"]):
        protos = frame.loc[frame["communication"] == comm, "protocol"]
        out.extend((comm, proto) for proto in protocols_in_order(protos))
    return out


def latency_samples(frame: pd.DataFrame) -> dict[tuple[str, str], list[float]]:
    """(communication, protocol) -> latencies in ms of connected probes, in display order."""
    rows = latency_rows(frame)
    return {
        (c, p): rows.loc[(rows["communication"] == c) & (rows["protocol"] == p), "latency_ms"].tolist()
        for c, p in _groups(rows)
    }


def latency_percentiles(frame: pd.DataFrame) -> pd.DataFrame:
    """Per communication and protocol: samples, p50, p90, p99 and max latency (ms)."""
    out = []
    for (comm, proto), values in latency_samples(frame).items():
        arr = np.asarray(values, dtype="float64")
        p50, p90, p99 = np.percentile(arr, [50, 90, 99])
        out.append(
            {
                "communication": comm,
                "protocol": proto,
                "samples": len(arr),
                "p50": float(p50),
                "p90": float(p90),
                "p99": float(p99),
                "max": float(arr.max()),
            }
        )
    table = pd.DataFrame(out, columns=list(LATENCY_COLUMNS))
    table["samples"] = table["samples"].astype("int64")
    for col in LATENCY_COLUMNS[3:]:
        table[col] = table[col].astype("float64")
    return table


def latency_p50(frame: pd.DataFrame) -> dict[tuple[str, str], float]:
    table = latency_percentiles(frame)
    return {(c, p): v for c, p, v in zip(table["communication"], table["protocol"], table["p50"])}


def has_throughput(frame: pd.DataFrame) -> bool:
    return "throughput_mbps" in frame.columns and bool(
        pd.to_numeric(frame["throughput_mbps"], errors="coerce").notna().any()
    )


def throughput_summary(frame: pd.DataFrame) -> pd.DataFrame | None:
    """Per communication and protocol: samples, mean, min, p50 and max Mbit/s; None without data."""
    if not has_throughput(frame):
        return None
    rows = frame.assign(throughput_mbps=pd.to_numeric(frame["throughput_mbps"], errors="coerce"))
    rows = rows[rows["throughput_mbps"].notna()]
    out = []
    for comm, proto in _groups(rows):
        arr = rows.loc[(rows["communication"] == comm) & (rows["protocol"] == proto), "throughput_mbps"].to_numpy(
            dtype="float64"
        )
        out.append(
            {
                "communication": comm,
                "protocol": proto,
                "samples": len(arr),
                "mean": float(arr.mean()),
                "min": float(arr.min()),
                "p50": float(np.percentile(arr, 50)),
                "max": float(arr.max()),
            }
        )
    table = pd.DataFrame(out, columns=list(THROUGHPUT_COLUMNS))
    table["samples"] = table["samples"].astype("int64")
    return table
