"""The suite's shipped data (conformance/resources.py): found through importlib.resources, in step
with the repository's own 3-node topology."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from testbed.conformance import resources
from testbed.errors import TestbedError
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_the_data_lives_in_the_package():
    package = pathlib.Path(resources.__file__).parent / "data"
    assert pathlib.Path(resources.MODEL) == package / "xyz.yaml"
    assert pathlib.Path(resources.TOPOLOGY) == package / "three-nodes.yaml"
    assert len(load_manifests([resources.MODEL]).pods) == 9


def test_the_shipped_topology_is_the_repository_three_node_cluster():
    shipped = load_topology(resources.TOPOLOGY)
    repo = load_topology(str(REPO / "topologies" / "three-nodes.yaml"))
    assert dataclasses.replace(shipped, file=repo.file) == repo


def test_a_missing_file_is_one_testbed_error():
    with pytest.raises(TestbedError, match="conformance data nothing.yaml is missing"):
        resources.data_path("nothing.yaml")
