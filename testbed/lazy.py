"""A package's re-exports loaded on first use (PEP 562); pure, below every other layer.

A package whose __init__ imports all of its modules makes every importer of one of them pay for
all: `testbed plan` reads netpol/model.py's policies_from, and importing it ran netpol/__init__,
which loaded the policy compiler, the oracle and, through rules/__init__, the packet tracer and
both renderers (about a quarter of the command's start). Such a package keeps its public names
(`from testbed.netpol import decide` works as before) and its import statements, moved under
`if TYPE_CHECKING:` (type checkers read them as before); at run time a name's module is loaded
when the name is first read, found from those same statements (one list of names, not two):

    if TYPE_CHECKING:
        from .oracle import Flow, decide
    __all__ = ["Flow", "decide"]
    if not TYPE_CHECKING:
        __getattr__ = lazy.exports(__name__, __file__)
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from typing import Any


def _type_checking_imports(init_file: str) -> dict[str, tuple[str, str]]:
    """name -> (relative module, its name there) of each `from .x import name [as other]`
    under the file's top-level `if TYPE_CHECKING:`."""
    with open(init_file, encoding="utf-8") as f:
        tree = ast.parse(f.read(), init_file)
    out: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.level and statement.module:
                    module = "." * statement.level + statement.module
                    for alias in statement.names:
                        out[alias.asname or alias.name] = (module, alias.name)
    return out


def exports(package: str, init_file: str) -> Callable[[str], Any]:
    """The package's module `__getattr__`: a name its `if TYPE_CHECKING:` block imports is
    loaded from that module and kept in the package; a submodule's own name imports the
    submodule, as an eager __init__ had made it an attribute (`testbed.rules.tracer`)."""
    where: dict[str, tuple[str, str]] = {}

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):  # __path__, __wrapped__, ... asked by tools: never a re-export
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if not where:
            where.update(_type_checking_imports(init_file))
        if name in where:
            module, original = where[name]
            value = getattr(importlib.import_module(module, package), original)
            setattr(sys.modules[package], name, value)  # read directly from now on
            return value
        try:
            return importlib.import_module(f".{name}", package)
        except ModuleNotFoundError as e:
            if e.name != f"{package}.{name}":
                raise
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
