"""The testbed package's bytecode, brought up to date before a benchmark times whole processes.

A process that may not write bytecode (PYTHONDONTWRITEBYTECODE, as this VM's sessions set it)
compiles every module it imports from source at each start: the `testbed plan` start and each of
the 48 `testbed run` processes of the NetworkPolicy suite would time the compiler (0.07 and 0.2 s
of CPU) rather than the testbed. scripts/install.sh compiles the package once; this does again
what was edited since (compileall skips the files whose bytecode is current), so the figures are
those of an installed testbed.
"""

from __future__ import annotations

import compileall
import os

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compile_package(folder: str = PACKAGE) -> bool:
    """Compile the modules under `folder` (this package; or another revision's copy, which the
    suite alternates with) whose bytecode is missing or stale; False if one failed."""
    return bool(compileall.compile_dir(folder, quiet=1))
