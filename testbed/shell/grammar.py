"""kubectl's command-line grammar for the shell (pure): resource names, `TYPE NAME`,
`TYPE/NAME`, comma lists and flags.

Sits under shell/kubectl.py, which runs the verbs. A flag a verb does not know is an error
naming it (kubectl: `error: unknown flag: --x`), never silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import overload

from ..errors import TestbedError

# canonical plural -> (Kind, aliases kubectl accepts)
RESOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "pods": ("Pod", ("pod", "po")),
    "services": ("Service", ("service", "svc")),
    "deployments": ("Deployment", ("deployment", "deploy")),
    "replicasets": ("ReplicaSet", ("replicaset", "rs")),
    "statefulsets": ("StatefulSet", ("statefulset", "sts")),
    "daemonsets": ("DaemonSet", ("daemonset", "ds")),
    "replicationcontrollers": ("ReplicationController", ("replicationcontroller", "rc")),
    "jobs": ("Job", ("job",)),
    "cronjobs": ("CronJob", ("cronjob", "cj")),
    "endpoints": ("Endpoints", ("ep",)),
    "endpointslices": ("EndpointSlice", ("endpointslice",)),
    "networkpolicies": ("NetworkPolicy", ("networkpolicy", "netpol")),
    "ingresses": ("Ingress", ("ingress", "ing")),
    "namespaces": ("Namespace", ("namespace", "ns")),
    "nodes": ("Node", ("node", "no")),
}
# what `kubectl get all` lists
ALL = ("pods", "services", "daemonsets", "deployments", "replicasets", "statefulsets", "cronjobs", "jobs")
# kubectl's group-qualified names in `TYPE/NAME` output
QUALIFIED = {
    "pods": "pod",
    "services": "service",
    "deployments": "deployment.apps",
    "replicasets": "replicaset.apps",
    "statefulsets": "statefulset.apps",
    "daemonsets": "daemonset.apps",
    "replicationcontrollers": "replicationcontroller",
    "jobs": "job.batch",
    "cronjobs": "cronjob.batch",
    "endpoints": "endpoints",
    "endpointslices": "endpointslice.discovery.k8s.io",
    "networkpolicies": "networkpolicy.networking.k8s.io",
    "ingresses": "ingress.networking.k8s.io",
    "namespaces": "namespace",
    "nodes": "node",
}
NAMESPACED = frozenset(RESOURCES) - {"namespaces", "nodes"}

_ALIAS = {a: plural for plural, (kind, aliases) in RESOURCES.items() for a in (plural, kind.lower(), *aliases)}
_ALIAS.update(
    {
        f"{a}.apps": p
        for a, p in list(_ALIAS.items())
        if p in ("deployments", "replicasets", "statefulsets", "daemonsets")
    }
)
_ALIAS.update(
    {
        "networkpolicies.networking.k8s.io": "networkpolicies",
        "ingresses.networking.k8s.io": "ingresses",
        "endpointslices.discovery.k8s.io": "endpointslices",
        **{f"{a}.batch": p for a, p in list(_ALIAS.items()) if p in ("jobs", "cronjobs")},
    }
)


class KubectlError(TestbedError):
    """A command kubectl would refuse: printed as kubectl prints it (one line), exit status 1."""


def resource(word: str) -> str:
    """`po`, `pod`, `Pods`, `deploy.apps` -> the canonical plural, or KubectlError."""
    plural = _ALIAS.get(word.lower())
    if plural is None:
        raise KubectlError(f'error: the server doesn\'t have a resource type "{word}"')
    return plural


def resource_words() -> list[str]:
    """Every spelling, for completion."""
    return sorted(set(_ALIAS) | {"all"})


@dataclass
class Args:
    """A parsed command line: positionals, flags (last value wins, repeated ones kept) and `-- CMD`."""

    positional: list[str] = field(default_factory=list)
    flags: dict[str, list[str]] = field(default_factory=dict)
    command: list[str] | None = None

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.flags.get(name)
        return values[-1] if values else default

    def value(self, name: str) -> str:
        """The last value of a flag `has` found (a KubectlError for one it did not, never None)."""
        values = self.flags.get(name)
        if not values:
            raise KubectlError(f"error: flag needs an argument: {name}")
        return values[-1]

    def has(self, name: str) -> bool:
        return name in self.flags


# flag spec: long name -> takes a value?  Short forms map to long ones.
SHORT = {
    "-n": "--namespace",
    "-A": "--all-namespaces",
    "-o": "--output",
    "-l": "--selector",
    "-f": "--filename",
    "-c": "--container",
    "-w": "--watch",
    "-i": "--stdin",
    "-t": "--tty",
    "-p": "--previous",
    "-h": "--help",
    "-r": "--recursive",
}
COMMON = {"--namespace": True, "--all-namespaces": False, "--help": False}


def parse(words: list[str], known: dict[str, bool]) -> Args:
    """Split `words` by the flags in `known` (+ COMMON); `-ti`, `-it` and `--x=v` forms accepted."""
    known = {**COMMON, **known}
    out = Args()
    i = 0
    while i < len(words):
        w = words[i]
        i += 1
        if w == "--":
            out.command = words[i:]
            break
        if not w.startswith("-") or w == "-":
            out.positional.append(w)
            continue
        value: str | None = None
        if w.startswith("--"):
            name, eq, v = w.partition("=")
            value = v if eq else None
            names = [name]
        elif len(w) > 2 and w[:2] in SHORT and known.get(SHORT[w[:2]]):
            names, value = [w[:2]], w[2:].lstrip("=")  # -lapp=x, -oyaml, -n=default
        elif len(w) > 2 and all(f"-{c}" in SHORT for c in w[1:]):
            names = [f"-{c}" for c in w[1:]]  # -ti, -it
        else:
            names = [w]
        for name in names:
            long = SHORT.get(name, name)
            if long not in known:
                raise KubectlError(
                    f"error: unknown flag: {name}"
                    if name.startswith("--")
                    else f"error: unknown shorthand flag: '{name[1:]}' in {w}"
                )
            if known[long]:
                if value is None:
                    if i >= len(words):
                        raise KubectlError(f"error: flag needs an argument: {name}")
                    value = words[i]
                    i += 1
                out.flags.setdefault(long, []).append(value)
            else:
                if value not in (None, "true", "false"):
                    raise KubectlError(f"error: invalid argument {value!r} for {name}")
                if value != "false":
                    out.flags.setdefault(long, []).append("true")
    return out


def targets(positional: list[str]) -> list[tuple[str, list[str]]]:
    """kubectl's ways of naming objects, as [(plural, [names])]: `TYPE`, `TYPE NAME...`,
    `TYPE1,TYPE2`, `TYPE/NAME TYPE/NAME`, `all`. No names = every object of the type."""
    if not positional:
        raise KubectlError(
            'error: You must specify the type of resource to get. Use "kubectl api-resources" '
            "for a complete list of supported resources."
        )
    if "/" in positional[0]:
        out: list[tuple[str, list[str]]] = []
        for word in positional:
            kind, slash, name = word.partition("/")
            if not slash or not name:
                raise KubectlError(
                    "error: there is no need to specify a resource type as a separate argument "
                    "when passing arguments in resource/name form"
                )
            plural = resource(kind)
            if out and out[-1][0] == plural:
                out[-1][1].append(name)
            else:
                out.append((plural, [name]))
        return out
    kinds: list[str] = []
    for word in positional[0].split(","):
        kinds.extend(ALL if word.lower() == "all" else (resource(word),))
    names = positional[1:]
    if names and len(kinds) > 1:
        raise KubectlError("error: you must specify only one resource type with names")
    return [(k, list(names)) for k in kinds]
