"""The interactive shell of `testbed up`: kubectl's verbs and Mininet's habits over the live cluster.

A line is, in this order: a shell word (help, exit, nodes, net, links, dump, pingall,
pingallfull, pingpair, iperf, xterm), a kubectl verb (with or without a leading `kubectl`),
or `<pod|node|host> CMD`, which runs CMD with /bin/sh -c in that namespace (shell/execns.py).
Every touch of the live cluster goes through a shell/live.py Live. `execute` returns the exit
status; scripts (`-c`, `--script`) stop at the first non-zero one.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import TestbedError
from ..faults.model import Timers
from ..plan.model import Plan
from ..plan.podnet import hosts_file
from . import faults as fault_commands
from . import mininet
from .execns import exec_argv, make_rcfile, substitute
from .grammar import KubectlError
from .kubectl import Kubectl
from .live import Change, Live, Run
from .objects import Catalog, Obj
from .probes import probe_command

if TYPE_CHECKING:
    from ..experiment.changes import Action

VERBS = (
    "get",
    "describe",
    "run",
    "create",
    "expose",
    "label",
    "annotate",
    "scale",
    "rollout",
    "set",
    "delete",
    "apply",
    "exec",
    "logs",
    "version",
    "api-resources",
)
UNSUPPORTED = (
    "edit",
    "patch",
    "replace",
    "port-forward",
    "proxy",
    "cp",
    "attach",
    "top",
    "cordon",
    "uncordon",
    "drain",
    "taint",
    "auth",
    "autoscale",
    "debug",
    "wait",
    "diff",
    "kustomize",
    "certificate",
    "cluster-info",
    "api-versions",
    "config",
    "plugin",
    "explain",
    "events",
)


MAX_LINE = 64 * 1024
MAX_EVENTS = 20  # per object


class Exit(Exception):
    """`exit`, `quit`, Ctrl-D: leave the shell (and tear the cluster down)."""


class ClusterShell(Kubectl):
    live: Live  # the verbs (Kubectl) need only part of it
    prompt = "testbed> "
    intro = (
        "Emulated cluster ready. kubectl's verbs (`get pods -o wide`, `kubectl get svc,pod`, `describe pod NAME`, "
        "`create deployment`, `expose`, `run -ti --rm`, `apply -f`, `logs POD`) and Mininet's (`nodes`, `net`, "
        "`pingall`, `<pod> ping <pod>`, `<node> iptables-save | grep KUBE`); `help` for more; `exit` or "
        "Ctrl-D tears it down."
    )

    def __init__(
        self,
        plan: Plan,
        netns_of: Callable[[str], str] | Live,
        run: Run | None = None,
        change: Change | None = None,
        manifests: Any = None,
    ) -> None:
        if isinstance(netns_of, Live):
            self.live = netns_of
        elif run is not None:
            self.live = Live(netns_of, run, change)
        else:
            raise TypeError("ClusterShell: a netns function needs its `run` (or pass a Live)")
        self.plan, self.manifests = plan, manifests
        if self.live.state_dir:
            os.makedirs(self.live.state_dir, exist_ok=True)
        # generated manifests, and the pods' shell functions
        self.workdir = tempfile.mkdtemp(prefix="testbed-shell-", dir=self.live.state_dir or None)
        self.rcfile = make_rcfile(self.live.state_dir or None)
        self.seen: dict[tuple[str, str, str], float] = {}
        self.history: dict[tuple[str, str, str], list[tuple[float, str, str, str]]] = {}
        self._cat: Catalog | None = None
        self.revisions: dict[tuple[str, str], list[str]] = {}  # Deployment -> change causes, for history
        # `kubectl annotate`: kept by the shell (annotations change no packet), gone with their object
        self.annotations: dict[tuple[str, str, str], dict[str, str]] = {}
        self.restarts = 0
        self.fault_timers = Timers()  # `fault timers` sets them (shell/faults.py)
        self._index()

    def close(self) -> None:
        """Remove the shell's private folders (its generated manifests and the pods' rc file)."""
        shutil.rmtree(self.workdir, ignore_errors=True)
        shutil.rmtree(os.path.dirname(self.rcfile), ignore_errors=True)

    # -- the cluster as the shell sees it --------------------------------------------------
    def _index(self) -> None:
        plan = self.plan
        self.targets: dict[str, tuple[str, str, str, bool]] = {}  # name -> (netns key, ip, hostname, is a pod)
        for n in plan.nodes:
            self.targets[n.name] = (n.key, n.host_ip, n.name, False)
        for x in plan.externals:
            self.targets[x.name] = (x.key, x.ip, x.name, False)
        for router in plan.network.routers if plan.network is not None else ():
            self.targets[router.name] = (router.key, router.interfaces[0].ip, router.name, False)
        for p in plan.pods:
            # the UTS hostname: a hostNetwork pod has its node's; spec.hostname when set (a StatefulSet
            # pod's is its name), else the pod's name
            hostname = p.node if p.host_network else (p.hostname or p.name)
            self.targets[f"{p.namespace}/{p.name}"] = (p.key, p.ip, hostname, True)
            if p.namespace == "default" or sum(q.name == p.name for q in plan.pods) == 1:
                self.targets.setdefault(p.name, (p.key, p.ip, hostname, True))
        self._cat = None
        self._prefix = {(p.namespace, p.name): p.prefix for p in plan.pods}
        self._host_network = {(p.namespace, p.name) for p in plan.pods if p.host_network}
        now = time.monotonic()
        cat = self.catalog()
        for plural in ("pods", "services", "endpoints", "networkpolicies", "deployments", "namespaces", "nodes"):
            for o in cat.objects(plural):
                key = (plural, o.namespace, o.name)
                if key not in self.seen:
                    self.seen[key] = now
                    self._record(o, now)
                elif plural == "endpoints" and self._last(key) != o.cols[0]:
                    events = self.history.setdefault(key, [])
                    events.append((now, "EndpointsChanged", "endpoint-controller", o.cols[0]))
                    del events[:-MAX_EVENTS]  # bounded, as the API server's events expire
        for key in [k for k in self.seen if not cat.find(k[0], k[1], k[2])]:
            del self.seen[key]
            self.history.pop(key, None)
            self.annotations.pop(key, None)

    def _last(self, key: tuple[str, str, str]) -> str:
        return (self.history.get(key) or [(0, "", "", "")])[-1][3]

    def _record(self, o: Obj, now: float) -> None:
        key = (o.plural, o.namespace, o.name)
        ev = self.history.setdefault(key, [])
        if o.plural == "pods" and o.cols[1] != "Pending":
            ev.append(
                (now, "Scheduled", "default-scheduler", f"Successfully assigned {o.namespace}/{o.name} to {o.wide[1]}")
            )
            prefix = f"/{self._prefix[(o.namespace, o.name)]}" if (o.namespace, o.name) in self._prefix else ""
            if (o.namespace, o.name) not in self._host_network:  # the CNI plugin is not called for those
                ev.append((now, "AddedInterface", "cni", f"Add eth0 [{o.wide[0]}{prefix}] on {o.wide[1]}'s cni0"))
            ev.append((now, "Started", "kubelet", "Started container (served by the testbed agent)"))
        elif o.plural == "endpoints":
            ev.append((now, "EndpointsChanged", "endpoint-controller", o.cols[0]))
        elif o.plural == "networkpolicies":
            ev.append((now, "PolicyApplied", "testbed-netpol", "rules compiled into the nodes' nftables"))

    def events_of(self, o: Obj) -> list[tuple[str, str, str, str]]:
        """What the shell saw happen to `o` (a Service shows its Endpoints' changes too)."""
        now = time.monotonic()
        seen = list(self.history.get((o.plural, o.namespace, o.name), []))
        if o.plural == "services":
            seen = sorted(seen + self.history.get(("endpoints", o.namespace, o.name), []), key=lambda e: e[0])
        return [(_age(now - t), r, s, m) for t, r, s, m in seen]

    def catalog(self) -> Catalog:
        if self._cat is None:
            self._cat = Catalog(self.plan, self.manifests, self.annotations)
        return self._cat

    def age(self, o: Obj) -> str:
        t = self.seen.get((o.plural, o.namespace, o.name))
        return _age(time.monotonic() - t) if t is not None else "0s"

    def change(self, action: Action) -> None:
        if self.live.change is None:
            raise KubectlError("error: this shell cannot change the cluster")
        try:
            self.plan, self.manifests = self.live.change(action)
        except TestbedError as exc:
            raise KubectlError(f"error: {exc}") from None
        self._index()

    def act(self, action: Any) -> list[str]:
        """A fault or a recovery (shell/faults.py) through the Live adapter; None: the active ones."""
        if self.live.fault is None:
            raise KubectlError("error: this shell cannot inject faults")
        self.plan, self.manifests, lines = self.live.fault(action, self.fault_timers)
        self._index()
        return lines

    def exec_in(self, target: tuple[str, str, str, bool], command: str) -> int:
        key, ip, hostname, is_pod = target
        if is_pod:
            pod = next((p for p in self.plan.pods if p.key == key), None)
            if pod is not None:
                try:
                    self.live.write_hosts(key, hosts_file(pod, self.plan.node(pod.node).host_ip))
                except OSError:
                    pass  # a read-only /etc: the VM's hosts file stays in view
        sys.stdout.flush()
        return self.live.exec(key, exec_argv(hostname, command, self.rcfile if is_pod else ""))

    # -- one line --------------------------------------------------------------------------
    def execute(self, line: str) -> int:
        """Run one command line; its exit status (kubectl's or the command's)."""
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            return 0
        if len(stripped) > MAX_LINE:
            print(f"error: a command line of {len(stripped)} characters; at most {MAX_LINE}")
            return 1
        first, _, rest = stripped.partition(" ")
        try:
            if first in ("exit", "quit", "EOF"):
                raise Exit()
            if first in fault_commands.COMMANDS:
                return fault_commands.COMMANDS[first](self, rest.strip())
            if first in mininet.COMMANDS:
                return mininet.COMMANDS[first](self, rest.strip())
            if first == "probe":  # a pod's probe fails or passes (shell/probes.py, issue 19)
                return probe_command(self, rest.strip())
            if first == "kubectl" or first in VERBS or first in UNSUPPORTED:
                return self.kubectl(stripped)
            target = self.targets.get(first)
            if target is None:
                print(f"*** unknown command or name: {first[:60]} (`help`; pods: `get pods`, nodes: `nodes`)")
                return 127
            if not rest.strip():
                print(f"usage: {first} <command...>   e.g. {first} ip addr; {first} sh for a shell")
                return 2
            return self.exec_in(target, substitute(rest.strip(), {n: t[1] for n, t in self.targets.items()}))
        except KubectlError as exc:
            print(str(exc))
            return 1
        except TestbedError as exc:  # a manifest that does not load, say: one line, the shell goes on
            print(f"error: {exc}")
            return 1  # kubectl's status for every error
        except (ValueError, OSError) as exc:
            print(f"error: {str(exc)[:200]}")
            return 1

    def kubectl(self, line: str) -> int:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise KubectlError(f"error: {exc}") from None
        if words[0] == "kubectl":
            words = words[1:]
        if not words or words[0] in ("help", "-h", "--help"):
            print(mininet.HELP)
            return 0
        verb = words[0]
        if verb in UNSUPPORTED:
            raise KubectlError(f"error: kubectl {verb} is not supported by this shell (`help` lists what is)")
        if verb not in VERBS:
            raise KubectlError(f'error: unknown command "{verb[:40]}" for "kubectl"')
        if verb == "annotate":
            return self.kubectl_label(words[1:], verb="annotate")
        return getattr(self, f"kubectl_{verb.replace('-', '_')}")(words[1:])

    # -- the loop ----------------------------------------------------------------------------
    def cmdloop(self) -> int:
        """Prompt until exit/Ctrl-D; Ctrl-C clears the line, as in bash and Mininet."""
        from .lineedit import LineEditor

        editor = LineEditor(self)
        print(self.intro)
        status = 0
        while True:
            try:
                line = editor.read(self.prompt)
            except KeyboardInterrupt:
                print("^C")
                continue
            except EOFError:
                print()
                return status
            try:
                status = self.execute(line)
            except Exit:
                return status
            except KeyboardInterrupt:
                print()
                status = 130

    def onecmd(self, line: str) -> int:
        try:
            return self.execute(line)
        except Exit:
            return 0


def _age(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 600:
        return f"{s // 60}m{s % 60}s" if s % 60 else f"{s // 60}m"
    if s < 3 * 3600:
        return f"{s // 60}m"
    return f"{s // 3600}h"
