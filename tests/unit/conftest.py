"""Fixtures of the unit tests shared by several test files (the rest live in tests/conftest.py)."""

from __future__ import annotations

import pytest

from ._ingress import DEMO, FEATURES, world


@pytest.fixture(scope="module")
def ingress_demo():
    """(manifests, plan) of manifests/ingress-demo.yaml (_ingress.py)."""
    return world(DEMO)


@pytest.fixture(scope="module")
def ingress_features(tmp_path_factory):
    """(manifests, plan) of _ingress.FEATURES: every Ingress feature and mistake at once."""
    path = tmp_path_factory.mktemp("ingress") / "features.yaml"
    path.write_text(FEATURES, encoding="utf-8")
    return world(path)
