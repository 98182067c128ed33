"""The ledger: what one emulation instance created, so teardown and `clean` can undo it.

Lives in /run/testbed/<tag>/ (tmpfs: gone after a reboot, like the namespaces it lists).
`owner` is the PID of the process that built the instance; an instance whose owner is
dead is stale, and the next run sweeps it, so leftovers of a crashed or kill -9'ed run
never break the next one.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from typing import Iterator

from .. import PREFIX

STATE_DIR = os.environ.get("TESTBED_STATE_DIR", "/run/testbed")


def netns_name(tag: str, key: str) -> str:
    """The named netns of a pod/node/host: tb-<tag>-<key> (e.g. tb-3fa2-default_web-x)."""
    return f"{PREFIX}-{tag}-{key}"


def netns_prefix(tag: str | None = None) -> str:
    return f"{PREFIX}-{tag}-" if tag else f"{PREFIX}-"


@dataclass
class Ledger:
    tag: str
    owner: int
    netns: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def dir(self) -> str:
        return os.path.join(STATE_DIR, self.tag)

    @classmethod
    def create(cls) -> "Ledger":
        os.makedirs(STATE_DIR, exist_ok=True)
        while True:
            tag = secrets.token_hex(2)
            try:
                os.mkdir(os.path.join(STATE_DIR, tag))
                break
            except FileExistsError:
                continue
        ledger = cls(tag=tag, owner=os.getpid())
        ledger.save()
        return ledger

    def save(self) -> None:
        tmp = os.path.join(self.dir, "ledger.json.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump({"tag": self.tag, "owner": self.owner, "netns": self.netns, "pids": self.pids,
                       "files": self.files}, handle)
        os.replace(tmp, os.path.join(self.dir, "ledger.json"))

    def add_netns(self, names: list[str]) -> None:
        self.netns.extend(names)
        self.save()

    def add_pid(self, pid: int) -> None:
        self.pids.append(pid)
        self.save()

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    @classmethod
    def load(cls, tag: str) -> "Ledger | None":
        try:
            with open(os.path.join(STATE_DIR, tag, "ledger.json"), encoding="utf-8") as handle:
                raw = json.load(handle)
            return cls(tag=raw["tag"], owner=int(raw["owner"]), netns=list(raw.get("netns", [])),
                       pids=[int(p) for p in raw.get("pids", [])], files=dict(raw.get("files", {})))
        except (OSError, ValueError, KeyError):
            return None


def all_tags() -> Iterator[str]:
    try:
        names = sorted(os.listdir(STATE_DIR))
    except FileNotFoundError:
        return
    for name in names:
        if os.path.isdir(os.path.join(STATE_DIR, name)):
            yield name


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
