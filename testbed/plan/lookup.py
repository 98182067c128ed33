"""Looking a pod up by name, the one way every layer does it (pure; plan/).

Plan.find_pod and World.find_pod return the pod or None; World.pod turns None into the
user-facing error (no such pod, or which pods an ambiguous name matches).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # plan/model.py and netpol/world.py both look pods up through here
    from .model import PodPlan


def matching_pods(pods: Iterable[PodPlan], ref: str) -> list[PodPlan]:
    """The pods `ref` names: `namespace/name`, or a name in any namespace."""
    namespace, _, name = ref.rpartition("/")
    return [p for p in pods if p.name == name and (not namespace or p.namespace == namespace)]


def find_pod(pods: Iterable[PodPlan], ref: str) -> PodPlan | None:
    """The one way to look a pod up (Plan.find_pod, World.find_pod): `namespace/name`, or a name
    unique across namespaces; None when no pod or several match (World.pod says which)."""
    hits = matching_pods(pods, ref)
    return hits[0] if len(hits) == 1 else None
