"""Shared fixtures: paths of the repository and its test data, and small YAML builders.

The unit tests are pure (no root, no kernel objects): they load YAML through spec/ and plan
clusters through plan/, writing any inline YAML into pytest's tmp_path.
"""

from __future__ import annotations

import pathlib
import sys
import textwrap

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]

if str(REPO) not in sys.path:  # `pytest` run without `python -m` still imports this checkout
    sys.path.insert(0, str(REPO))


@pytest.fixture
def yaml_file(tmp_path):
    """yaml_file(name, text) -> path of a file holding the dedented text."""

    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return str(path)

    return write


@pytest.fixture
def topology(yaml_file):
    """topology(text) -> ClusterSpec loaded from that text."""
    from testbed.spec.topology import load_topology

    counter = iter(range(1000))

    def load(text: str):
        return load_topology(yaml_file(f"topology-{next(counter)}.yaml", text))

    return load


@pytest.fixture
def manifests(yaml_file):
    """manifests(*texts) -> Manifests loaded from one file per text."""
    from testbed.spec.workloads import load_manifests

    counter = iter(range(1000))

    def load(*texts: str):
        return load_manifests([yaml_file(f"manifest-{next(counter)}.yaml", t) for t in texts])

    return load


@pytest.fixture
def plan_of(topology, manifests):
    """plan_of(topology_text, *manifest_texts, seed=1) -> Plan."""
    from testbed.plan.build import plan_cluster

    def build(topology_text: str, *manifest_texts: str, seed: int = 1):
        # These tests are about the user's pods: leave the cluster's CoreDNS pods out.
        return plan_cluster(topology(topology_text), manifests(*manifest_texts), seed, system=False)

    return build
