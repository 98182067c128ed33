"""The one golden-file check of the unit tests: compare a text with tests/unit/golden/<name>.

Golden files are regenerated only with UPDATE_GOLDEN=1, for example
    UPDATE_GOLDEN=1 python -m pytest -q tests/unit -k netpol
Review the diff before accepting it: a golden file holds what the testbed builds or says
(rules a node holds, a plan, an nginx.conf, an explanation), so every change in it is a
change in behaviour.
"""

from __future__ import annotations

import os
import pathlib

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"


def check_golden(name: str, text: str) -> None:
    """`text` must equal golden/<name> (a path below tests/unit/golden, e.g. "netpol/xyz.nft")."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file tests/unit/golden/{name} yet: run with UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(encoding="utf-8"), (
        f"differs from tests/unit/golden/{name} (UPDATE_GOLDEN=1 to accept, after review)"
    )
