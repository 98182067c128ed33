"""The interactive shell of `testbed up`, in Mininet's CLI style, with kubectl-like views.

`<pod|node|host> <command...>` runs the command inside that pod's, node's or external
host's network namespace; names of pods, nodes and hosts in the arguments are replaced by
their IPs, as Mininet's CLI does (`web-abc ping two-containers`). `get nodes|pods [-o
wide]` and `describe pod|node NAME` show the cluster as kubectl would. Leaving the shell
(exit, Ctrl-D) tears the cluster down.
"""

from __future__ import annotations

import cmd
import re
import shlex
import shutil
from typing import Any, Callable

from .plan.model import Plan
from .views import (describe_node, describe_pod, get_endpointslices, get_nodes, get_pods, get_policies,
                    get_services)

Exec = Callable[[str, list[str]], int]
def as_in_a_pod(argv: list[str]) -> list[str]:
    """Tools behave as in the scenarios' busybox pods.

    BusyBox's wget tries once (`wget --spider --timeout=1 nginx` fails after 1 s, scenario 003);
    GNU wget, which the VM has, retries 20 times, so it is told to try once. `nslookup` is
    BusyBox's when the VM has no other.
    """
    if argv[0] == "wget" and not any(a.startswith(("--tries", "-t")) for a in argv[1:]):
        return ["wget", "--tries=1", *argv[1:]]
    if argv[0] == "nslookup" and not shutil.which("nslookup") and shutil.which("busybox"):
        return ["busybox", *argv]
    return argv


def _files(line: str) -> list[str]:
    args = shlex.split(line)
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-f", "--filename")]


_URL_HOST = re.compile(r"^([a-z][a-z0-9+.-]*://)([^/:?#]+)(.*)$")


class ClusterShell(cmd.Cmd):
    intro = ("Emulated cluster ready. `get pods -o wide`, `get svc`, `describe pod NAME`, `<pod> ping <pod>`, "
             "`<pod> wget -qO- http://<service>`, `<node> ip route`, `apply -f FILE`, `label pod NAME k=v`, "
             "`scale deployment NAME --replicas=N`; `help` for more; `exit` or Ctrl-D tears it down.")
    prompt = "testbed> "

    def __init__(self, plan: Plan, netns_of: Callable[[str], str], run: Exec,
                 change: Callable[[object], tuple[Plan, Any]] | None = None, manifests: Any = None) -> None:
        super().__init__()
        self.plan, self.netns_of, self.run, self.change, self.manifests = plan, netns_of, run, change, manifests
        self._index()

    def _index(self) -> None:
        plan = self.plan
        self.targets: dict[str, tuple[str, str]] = {}  # name -> (netns key, ip)
        for n in plan.nodes:
            self.targets[n.name] = (n.key, n.host_ip)
        for x in plan.externals:
            self.targets[x.name] = (x.key, x.ip)
        for router in (plan.network.routers if plan.network is not None else ()):
            self.targets[router.name] = (router.key, router.interfaces[0].ip)
        for p in plan.pods:
            self.targets[p.full_name] = (p.key, p.ip)
            if sum(q.name == p.name for q in plan.pods) == 1:
                self.targets[p.name] = (p.key, p.ip)

    def emptyline(self) -> bool:
        return False

    def do_get(self, line: str) -> None:
        """get nodes|pods|svc|endpointslices|netpol [-o wide] [-n NAMESPACE | -A]"""
        args = shlex.split(line)
        wide = "wide" in args
        namespace: str | None = "default"
        if "-A" in args or "--all-namespaces" in args:
            namespace = None
        if "-n" in args and args.index("-n") + 1 < len(args):
            namespace = args[args.index("-n") + 1]
        what = args[0] if args else ""
        if what in ("nodes", "node", "no"):
            print(get_nodes(self.plan, wide))
        elif what in ("pods", "pod", "po"):
            print(get_pods(self.plan, wide, namespace))
        elif what in ("services", "service", "svc"):
            print(get_services(self.plan, wide, namespace))
        elif what in ("endpointslices", "endpointslice"):
            print(get_endpointslices(self.plan, namespace))
        elif what in ("networkpolicies", "networkpolicy", "netpol"):
            print(get_policies(self.manifests, namespace))
        else:
            print("usage: get nodes|pods|svc|endpointslices|netpol [-o wide] [-n NAMESPACE | -A]")

    def do_describe(self, line: str) -> None:
        """describe pod|node NAME"""
        # (Services: `get svc -o wide`, `get endpointslices`; policies: `testbed explain`.)
        args = shlex.split(line)
        if len(args) == 2 and args[0] in ("pod", "pods", "po"):
            pod = self.plan.find_pod(args[1])
            print(describe_pod(self.plan, pod) if pod else f'Error: pods "{args[1]}" not found')
        elif len(args) == 2 and args[0] in ("node", "nodes", "no"):
            try:
                print(describe_node(self.plan, args[1]))
            except KeyError:
                print(f'Error: nodes "{args[1]}" not found')
        else:
            print("usage: describe pod|node NAME")

    # -- changes, as kubectl would make them -------------------------------------------
    def _apply(self, action: object) -> None:
        if self.change is None:
            print("*** this shell cannot change the cluster")
            return
        from .errors import TestbedError
        try:
            self.plan, self.manifests = self.change(action)
        except TestbedError as exc:
            print(f"error: {exc}")
            return
        self._index()

    def do_apply(self, line: str) -> None:
        """apply -f FILE [-f FILE...]: create or update objects (Pods, Deployments, Services, NetworkPolicies...)"""
        from .experiment.changes import Apply
        files = _files(line)
        if files:
            self._apply(Apply(tuple(files)))
        else:
            print("usage: apply -f FILE")

    def do_delete(self, line: str) -> None:
        """delete -f FILE | delete pod NAME: remove objects (a controller replaces a deleted pod)"""
        from .experiment.changes import Delete, DeletePods
        from .experiment.model import PodSelection
        args = shlex.split(line)
        if len(args) == 2 and args[0] in ("pod", "pods", "po"):
            self._apply(DeletePods(PodSelection(names=(args[1],))))
        elif _files(line):
            self._apply(Delete(tuple(_files(line))))
        else:
            print("usage: delete -f FILE | delete pod NAME")

    def do_label(self, line: str) -> None:
        """label pod NAME key=value [key-]...: set or remove labels"""
        from .experiment.changes import Label
        from .experiment.model import PodSelection
        args = shlex.split(line)
        if len(args) < 3 or args[0] not in ("pod", "pods", "po"):
            print("usage: label pod NAME key=value [key-]")
            return
        labels: dict[str, str | None] = {}
        for item in args[2:]:
            if item.endswith("-"):
                labels[item[:-1]] = None
            elif "=" in item:
                key, _, value = item.partition("=")
                labels[key] = value
        self._apply(Label(PodSelection(names=(args[1],)), labels))

    def do_scale(self, line: str) -> None:
        """scale deployment|replicaset|replicationcontroller NAME --replicas=N"""
        from .experiment.changes import Scale
        args = shlex.split(line.replace("--replicas=", "--replicas "))
        kinds = {"deployment": "Deployment", "deploy": "Deployment", "replicaset": "ReplicaSet", "rs": "ReplicaSet",
                 "replicationcontroller": "ReplicationController", "rc": "ReplicationController"}
        if len(args) == 4 and args[0] in kinds and args[2] == "--replicas" and args[3].isdigit():
            self._apply(Scale(kinds[args[0]], args[1], int(args[3])))
        else:
            print("usage: scale deployment NAME --replicas=N")

    def do_exit(self, _line: str) -> bool:
        """Leave the shell and tear the cluster down."""
        return True

    do_quit = do_exit

    def do_EOF(self, _line: str) -> bool:
        print()
        return True

    def default(self, line: str) -> None:
        try:
            args = shlex.split(line)
        except ValueError as exc:
            print(f"*** {exc}")
            return
        if not args:
            return
        target = self.targets.get(args[0])
        if target is None:
            print(f"*** unknown command or name: {args[0]} (pods: `get pods`, nodes: `get nodes`)")
            return
        if len(args) == 1:
            print(f"usage: {args[0]} <command...>   e.g. {args[0]} ip addr")
            return
        self.run(self.netns_of(target[0]), as_in_a_pod([self.substitute(a) for a in args[1:]]))

    def substitute(self, arg: str) -> str:
        """A pod/node/host name, alone or as a URL's host (http://web-x:80/), becomes its IP."""
        if arg in self.targets:
            return self.targets[arg][1]
        match = _URL_HOST.match(arg)
        if match and match.group(2) in self.targets:
            return match.group(1) + self.targets[match.group(2)][1] + match.group(3)
        return arg

    def completenames(self, text: str, *ignored: object) -> list[str]:
        return [n for n in list(self.targets) + ["get", "describe", "exit"] if n.startswith(text)]
