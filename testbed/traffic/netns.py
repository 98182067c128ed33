"""Moved to testbed/netns.py (the bottom layer); this alias remains for emu/pods.py only.

TODO(issue 12 item 4): once emu/pods.py imports `from ..netns import in_netns` (it is being
rewritten by another change), delete this module and the matching `ignore_imports` line in
setup.cfg's import-linter contracts.
"""

from __future__ import annotations

from ..netns import NetnsSwitcher, in_netns, raise_nofile_limit

__all__ = ["NetnsSwitcher", "in_netns", "raise_nofile_limit"]
