"""Line editing for the shell: GNU readline (Python's stdlib) set up for kubectl-style words.

Completion of commands, kubectl verbs, resource types, object names containing dashes, flags
and file paths after -f; a persistent history ($XDG_STATE_HOME/testbed/history, else
~/.testbed_history, 1,000 lines). When stdin is not a terminal (scripts, pipes), lines are
read plainly. Ctrl-C reaches the loop as KeyboardInterrupt, which clears the line there.
"""

from __future__ import annotations

import glob
import os
import sys
from typing import Any

from .grammar import resource_words

FLAGS = [
    "-n",
    "-A",
    "-o",
    "-l",
    "-f",
    "-w",
    "--namespace",
    "--all-namespaces",
    "--output=",
    "--selector",
    "--field-selector",
    "--show-labels",
    "--sort-by=",
    "--image=",
    "--labels=",
    "--port=",
    "--expose",
    "--rm",
    "-ti",
    "--replicas=",
    "--overwrite",
    "--target-port=",
    "--type=",
    "--name=",
    "--filename",
]
OUTPUTS = ["wide", "yaml", "json", "name", "jsonpath=", "custom-columns="]


def history_file() -> str:
    state = os.environ.get("XDG_STATE_HOME")
    if state:
        return os.path.join(state, "testbed", "history")
    return os.path.expanduser("~/.testbed_history")


def candidates(shell: Any, words: list[str], text: str) -> list[str]:
    """What may come next after `words` (the line's complete words), starting with `text`."""
    from . import mininet
    from .core import VERBS

    if words and words[0] == "kubectl":
        words = words[1:]
        if not words:
            return [v + " " for v in VERBS if v.startswith(text)]
    if not words:
        names = list(mininet.COMMANDS) + list(VERBS) + ["kubectl", "exit"] + list(shell.targets)
        return sorted({n + " " for n in names if n.startswith(text) and "/" not in n})
    prev = words[-1]
    if prev in ("-f", "--filename"):
        return [p + ("/" if os.path.isdir(p) else " ") for p in sorted(glob.glob(os.path.expanduser(text) + "*"))]
    if prev in ("-o", "--output"):
        return [o for o in OUTPUTS if o.startswith(text)]
    if prev in ("-n", "--namespace"):
        return [o.name + " " for o in shell.catalog().objects("namespaces") if o.name.startswith(text)]
    if text.startswith("-"):
        return [f for f in FLAGS if f.startswith(text)]
    verb = words[0]
    if verb in ("get", "describe", "delete", "label", "scale", "expose", "rollout", "create", "logs", "exec"):
        types = [w for w in words[1:] if not w.startswith("-") and w not in ("status", "history", "undo", "restart")]
        if verb in ("logs", "exec"):
            return [p.name + " " for p in shell.plan.pods if p.name.startswith(text)]
        if not types:
            return [w + " " for w in resource_words() if w.startswith(text)]
        try:
            from .grammar import resource

            plural = resource(types[0].split(",")[0])
        except Exception:
            return []
        return [o.name + " " for o in shell.catalog().objects(plural) if o.name.startswith(text)]
    if verb in shell.targets:  # `<pod> ping <pod>`: names become IPs
        return [n + " " for n in shell.targets if n.startswith(text) and "/" not in n]
    return []


class LineEditor:
    """input() with readline when stdin is a terminal; plain line reading otherwise."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.tty = sys.stdin.isatty()
        self.readline = None
        if not self.tty:
            return
        try:
            import readline
        except ImportError:  # pragma: no cover - CPython on Linux has it
            return
        self.readline = readline
        readline.set_completer_delims(" \t\n|;&><=")  # dashes and slashes belong to names
        readline.set_completer(self._complete)
        readline.parse_and_bind("tab: complete")
        readline.set_history_length(1000)
        self.path = history_file()
        try:
            readline.read_history_file(self.path)
        except OSError:
            pass
        self._matches: list[str] = []

    def _complete(self, text: str, state: int) -> str | None:
        if state == 0:
            if self.readline is None:  # never: readline calls this only once it is set up
                return None
            line = self.readline.get_line_buffer()[: self.readline.get_begidx()]
            try:
                self._matches = candidates(self.shell, line.split(), text)
            except Exception:  # completion must never break the prompt
                self._matches = []
        return self._matches[state] if state < len(self._matches) else None

    def read(self, prompt: str) -> str:
        if not self.tty:
            sys.stdout.write(prompt)
            sys.stdout.flush()
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            return line.rstrip("\n")
        line = input(prompt)
        if self.readline is not None and line.strip():
            try:
                os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
                self.readline.append_history_file(1, self.path) if os.path.exists(
                    self.path
                ) else self.readline.write_history_file(self.path)
            except OSError:
                pass
        return line
