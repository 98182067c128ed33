"""Kubernetes-style generated names, deterministic from a seed (part of plan/).

A Deployment's ReplicaSet is <deployment>-<pod-template-hash> and its pods
<replicaset>-<5 random chars>, like kube-controller-manager (controller.ComputeHash:
FNV-32a of the template, rand.SafeEncodeString; names.SimpleNameGenerator for the suffix).
Our "random" comes from a seeded generator per controller, so a run is reproducible.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import TYPE_CHECKING

from ..spec.model import OMIT_AT_DEFAULT

if TYPE_CHECKING:  # spec/ comes before plan/; the hash only reads the template
    from ..spec.model import PodTemplate

# k8s.io/apimachinery/pkg/util/rand: no vowels (no words) and no confusable 0/1/3.
ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    return "".join(ALPHANUMS[ord(c) % len(ALPHANUMS)] for c in text)


def template_hash(template: PodTemplate) -> str:
    """pod-template-hash: stable for the same template, different when it changes."""
    canonical = json.dumps(template, sort_keys=True, default=_plain).encode()
    return safe_encode(str(fnv32a(canonical)))


def _plain(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        # a field added to a dataclass later says so (OMIT_AT_DEFAULT): at its default it is left
        # out, so the pod-template-hash of every template that does not use it stays the same
        return {
            f.name: getattr(value, f.name)
            for f in fields(value)
            if not (f.metadata.get(OMIT_AT_DEFAULT) and getattr(value, f.name) == f.default)
        }
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot hash {type(value).__name__}")


class NameSource:
    """Seeded generator of pod-name suffixes and UIDs, one stream per owner.

    `draws` counts what each stream has handed out; a later plan (after scaling, a pod
    deletion, a rollout) starts from the previous plan's counts, so new pods get names and
    UIDs never used before in this run, and the whole sequence stays reproducible.
    """

    def __init__(self, seed: int, draws: Mapping[str, int] | None = None) -> None:
        self.seed = seed
        self._streams: dict[str, random.Random] = {}
        self.draws: dict[str, int] = {}
        for stream, count in sorted((draws or {}).items()):
            for _ in range(count):  # replay exactly what was consumed, to continue the stream
                if stream.startswith("uid:"):
                    self.uid(stream[4:])
                else:
                    self.suffix(stream)

    def _draw(self, stream: str) -> random.Random:
        if stream not in self._streams:
            digest = hashlib.sha256(f"{self.seed}/{stream}".encode()).digest()
            self._streams[stream] = random.Random(int.from_bytes(digest[:8], "big"))
        self.draws[stream] = self.draws.get(stream, 0) + 1
        return self._streams[stream]

    def suffix(self, owner: str, n: int = 5) -> str:
        rng = self._draw(owner)
        return "".join(rng.choice(ALPHANUMS) for _ in range(n))

    def uid(self, owner: str) -> str:
        rng = self._draw("uid:" + owner)
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))  # RFC 4122 version and variant bits


def host_veth_name(uid: str) -> str:
    """vethXXXXXXXX (12 chars, under IFNAMSIZ) derived from the pod UID, as CNI plugins do."""
    return "veth" + hashlib.sha256(uid.encode()).hexdigest()[:8]
