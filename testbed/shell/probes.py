"""The shell's `probe` command (pure; shell/, issue 19): make a pod's probe fail or pass.

`probe fail web-7c9f-x2b4z` makes the pod's readiness probe fail (`liveness` or `startup` as
a third word for the others); `probe pass ...` makes it pass again. The change is played in
time through the live cluster's lifecycle driver (shell/live.py: ten times faster than a real
cluster), so kubelet notices at its probe ticks, after failureThreshold failures, and every
node's kube-proxy follows with its delays; from then on the shell's other changes are played
in time too (a deleted pod terminates, with its preStop hook and grace period).
"""

from __future__ import annotations

from typing import Protocol

from ..experiment.changes import Action, SetProbe
from ..experiment.model import PodSelection
from ..plan.model import Plan


class Shell(Protocol):
    """What this command uses of shell/core.py's ClusterShell."""

    @property
    def plan(self) -> Plan: ...

    def change(self, action: Action) -> None: ...


PROBES = ("readiness", "liveness", "startup")
USAGE = "usage: probe fail|pass POD [readiness|liveness|startup]   (-n NAMESPACE before POD)"


def probe_command(shell: Shell, rest: str) -> int:
    words = rest.split()
    namespace = "default"
    if len(words) >= 2 and words[0] in ("-n", "--namespace"):
        namespace, words = words[1], words[2:]
    if "-n" in words[1:]:
        i = words.index("-n")
        if i + 1 < len(words):
            namespace, words = words[i + 1], words[:i] + words[i + 2 :]
    if len(words) not in (2, 3) or words[0] not in ("fail", "pass") or (len(words) == 3 and words[2] not in PROBES):
        print(USAGE)
        return 2
    verb, name = words[0], words[1]
    which = words[2] if len(words) == 3 else "readiness"
    pod = next((p for p in shell.plan.pods if p.namespace == namespace and p.name == name), None)
    if pod is None:
        print(f'Error from server (NotFound): pods "{name[:60]}" not found')
        return 1
    shell.change(SetProbe(PodSelection(namespace=namespace, names=(name,)), which, verb == "pass"))
    ready = pod.full_name not in (shell.plan.conditions.not_ready if shell.plan.conditions is not None else ())
    print(f"pod/{name} {which} probe {'passes' if verb == 'pass' else 'fails'}: {'Ready' if ready else 'NotReady'}")
    return 0
