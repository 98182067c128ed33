"""What `-f` names, expanded as kubectl does: files, directories, standard input.

Between the command line (or an experiment's `manifests:`) and spec/workloads.load_manifests,
which reads files. `-f DIR` takes the *.yaml, *.yml and *.json files in DIR in sorted order;
with `-R` (recursive) those of every folder below it too; `-f -` is standard input. Bounded:
a folder tree of more than MAX_FILES manifest files is refused, not walked to the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from ..errors import Problem, SpecError
from .decode import STDIN

EXTENSIONS = (".yaml", ".yml", ".json")
MAX_FILES = 10_000


def expand_inputs(paths: Iterable[str], recursive: bool = False) -> list[str]:
    """The manifest files `paths` name, in kubectl's order; a missing path stays in the list so
    that the loader reports it with the others."""
    out: list[str] = []
    for path in paths:
        if path != STDIN and os.path.isdir(path):
            found = _folder(path, recursive)
            if not found:
                raise SpecError(
                    [
                        Problem(
                            path,
                            "",
                            "no *.yaml, *.yml or *.json files in this folder"
                            + ("" if recursive else " (-R reads its subfolders)"),
                        )
                    ]
                )
            out.extend(found)
        else:
            out.append(path)
        if len(out) > MAX_FILES:
            raise SpecError([Problem(path, "", f"more than {MAX_FILES:,} manifest files")])
    return out


def _folder(root: str, recursive: bool) -> list[str]:
    files: list[str] = []
    for current, dirs, names in os.walk(root):
        dirs.sort()
        if not recursive:
            dirs.clear()
        files.extend(os.path.join(current, n) for n in sorted(names) if n.endswith(EXTENSIONS))
        if len(files) > MAX_FILES:
            raise SpecError([Problem(root, "", f"more than {MAX_FILES:,} manifest files")])
    return files
