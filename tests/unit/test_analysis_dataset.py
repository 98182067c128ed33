"""Loading a run's dataset: parquet or CSV give the same typed frame; bad folders are clear errors."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from testbed.analysis import ResultsError, from_rows, load_dataset, load_meta, normalize
from testbed.analysis.dataset import dst_order, party_label, src_order, steps_in_order
from testbed.errors import TestbedError
from testbed.experiment.records import COLUMNS

from .synthetic_runs import synthetic_rows, write_run


def test_parquet_and_csv_load_to_the_same_typed_frame(tmp_path):
    rows = synthetic_rows()
    a = load_dataset(write_run(str(tmp_path / "a"), rows))
    b = load_dataset(write_run(str(tmp_path / "b"), rows, csv_only=True))
    assert not os.path.exists(tmp_path / "b" / "probes.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == len(rows)
    assert a["port"].dtype == "int64" and a["latency_ms"].dtype == "float64"
    assert a["outcome_ok"].dtype == bool and str(a["nat_free"].dtype) == "boolean"
    assert a["throughput_mbps"].isna().all()
    # empty strings stay empty strings, missing numbers are NaN, nat_free keeps its three states
    timeouts = a[a["outcome"] == "timeout"]
    assert (timeouts["seen_src_ip"] == "").all() and timeouts["latency_ms"].isna().all()
    assert timeouts["nat_free"].isna().all()
    assert int((a["nat_free"] == False).sum()) == 1  # noqa: E712


def test_every_documented_column_is_there_even_if_the_source_lacks_it():
    frame = normalize(pd.DataFrame({"step": ["s"], "outcome": ["connected"], "port": ["80"]}))
    assert set(COLUMNS) <= set(frame.columns)
    assert frame.loc[0, "port"] == 80 and frame.loc[0, "service"] == "" and frame.loc[0, "attempt"] == 0
    assert pd.isna(frame.loc[0, "nat_free"]) and frame.loc[0, "outcome_ok"] == False  # noqa: E712


def test_empty_dataset_loads_with_columns(tmp_path):
    frame = load_dataset(write_run(str(tmp_path / "e"), []))
    assert frame.empty and set(COLUMNS) <= set(frame.columns)
    assert from_rows([]).columns.tolist() == frame.columns.tolist()


def test_missing_folder_and_folder_without_dataset_are_clear_errors(tmp_path):
    with pytest.raises(ResultsError, match="no such results folder"):
        load_dataset(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(TestbedError, match="no probes.parquet or probes.csv"):
        load_dataset(str(tmp_path / "empty"))
    assert ResultsError.exit_code == 2


def test_unreadable_parquet_falls_back_to_csv(tmp_path):
    run = write_run(str(tmp_path / "r"), synthetic_rows(with_services=False))
    with open(os.path.join(run, "probes.parquet"), "wb") as handle:
        handle.write(b"not parquet")
    assert len(load_dataset(run)) == len(synthetic_rows(with_services=False))


def test_meta(tmp_path):
    run = write_run(str(tmp_path / "r"), [], seed=42)
    assert load_meta(run)["seed"] == 42
    assert load_meta(str(tmp_path)) == {}
    (tmp_path / "r" / "run.json").write_text("[1]")
    with pytest.raises(ResultsError, match="JSON object"):
        load_meta(run)


def test_labels_and_orders():
    frame = from_rows(synthetic_rows())
    assert src_order(frame) == ["a", "b", "c", "n1 (node)", "n2 (node)"]
    assert dst_order(frame) == ["a:80", "b:53", "b:80", "c:80", "skewed (svc):80", "web (svc):80"]
    assert steps_in_order(frame) == ["baseline", "policy", "service"]
    assert party_label("pod", "x", "kube-system") == "kube-system/x"
    assert party_label("external", "laptop", "") == "laptop (external)"
