"""The conformance suite's shipped data (testbed/conformance/data/), found with importlib.resources.

    data/xyz.yaml           the classic model: namespaces x, y, z, bare pods a, b, c (MODEL)
    data/three-nodes.yaml   the 3-node topology the model pins its pods to (TOPOLOGY); the same
                            cluster as topologies/three-nodes.yaml, which a unit test checks
    data/three-nodes-dual.yaml  the same cluster, dual-stack (TOPOLOGY_DUAL: --family ipv6|dual)

The files are package data (setup.cfg), so an installed testbed (`pip install .`, not editable)
runs `testbed conformance` without this repository. pip installs the package as files (it is
not zip-safe), so each resource is a real file with a path the YAML loaders can open.
"""

from __future__ import annotations

import pathlib
from importlib.resources import files

from ..errors import TestbedError


def data_path(name: str) -> str:
    """The filesystem path of data/<name> in the installed package."""
    path = files(__package__) / "data" / name
    if not isinstance(path, pathlib.Path) or not path.is_file():
        raise TestbedError(f"the testbed's conformance data {name} is missing from its installation ({path})")
    return str(path)


MODEL = data_path("xyz.yaml")
TOPOLOGY = data_path("three-nodes.yaml")
TOPOLOGY_DUAL = data_path("three-nodes-dual.yaml")
