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
from typing import Callable

from .plan.model import Plan, PodPlan

Exec = Callable[[str, list[str]], int]
_URL_HOST = re.compile(r"^([a-z][a-z0-9+.-]*://)([^/:?#]+)(.*)$")


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def get_nodes(plan: Plan, wide: bool) -> str:
    rows = [["NAME", "STATUS", "ROLES", "AGE", "VERSION"] + (["INTERNAL-IP", "POD-CIDR", "TAINTS"] if wide else [])]
    for n in plan.nodes:
        rows.append([n.name, "Ready", n.role, "-", "emulated"] +
                    ([n.host_ip, n.pod_cidr, ",".join(n.taints) or "<none>"] if wide else []))
    return table(rows)


def get_pods(plan: Plan, wide: bool, namespace: str | None) -> str:
    rows = [(["NAMESPACE"] if namespace is None else []) + ["NAME", "READY", "STATUS", "RESTARTS", "AGE"] +
            (["IP", "NODE"] if wide else [])]
    for p in plan.pods:
        if namespace is not None and p.namespace != namespace:
            continue
        rows.append(([p.namespace] if namespace is None else []) +
                    [p.name, f"{len(p.containers)}/{len(p.containers)}", "Running", "0", "-"] +
                    ([p.ip, p.node] if wide else []))
    return table(rows) if len(rows) > 1 else f"No resources found in {namespace} namespace."


def describe_pod(plan: Plan, pod: PodPlan) -> str:
    node = plan.node(pod.node)
    lines = [f"Name:         {pod.name}", f"Namespace:    {pod.namespace}", f"Node:         {pod.node}/{node.host_ip}",
             f"Labels:       " + (("\n              ".join(f"{k}={v}" for k, v in sorted(pod.labels.items()))) or "<none>"),
             "Status:       Running", f"IP:           {pod.ip}", f"Controlled By:  {pod.owner or '<none>'}",
             f"Network:      eth0 {pod.ip}/{pod.prefix} via {pod.gateway} (cni0 on {pod.node}), host veth {pod.host_veth}",
             "Containers:"]
    for c in pod.containers:
        ports = [f"{q.port}/{q.protocol}" + (f" ({q.name})" if q.name else "") for q in pod.ports if q.container == c]
        lines += [f"  {c}:", f"    Ports:  {', '.join(ports) or '<none>'}"]
    return "\n".join(lines)


def describe_node(plan: Plan, name: str) -> str:
    n = plan.node(name)
    lines = [f"Name:         {n.name}", f"Roles:        {n.role}",
             "Labels:       " + "\n              ".join(f"{k}={v}" for k, v in sorted(n.labels.items())),
             f"Taints:       {', '.join(n.taints) or '<none>'}", f"Addresses:    InternalIP {n.host_ip}",
             f"PodCIDR:      {n.pod_cidr} (gateway {n.gateway} on {n.bridge})", "Routes:"]
    lines += [f"  {r.dst} via {r.via} dev {r.dev}   # {r.why}" for r in plan.routes if r.node == name]
    pods = plan.pods_on(name)
    lines += [f"Non-terminated Pods: ({len(pods)} in total)"] + [f"  {p.namespace}/{p.name}  {p.ip}" for p in pods]
    return "\n".join(lines)


class ClusterShell(cmd.Cmd):
    intro = ("Emulated cluster ready. `get pods -o wide`, `describe pod NAME`, `<pod> ping <pod>`, "
             "`<node> ip route`; `help` for more; `exit` or Ctrl-D tears it down.")
    prompt = "testbed> "

    def __init__(self, plan: Plan, netns_of: Callable[[str], str], run: Exec) -> None:
        super().__init__()
        self.plan, self.netns_of, self.run = plan, netns_of, run
        self.targets: dict[str, tuple[str, str]] = {}  # name -> (netns key, ip)
        for n in plan.nodes:
            self.targets[n.name] = (n.key, n.host_ip)
        for x in plan.externals:
            self.targets[x.name] = (x.key, x.ip)
        for p in plan.pods:
            self.targets[p.full_name] = (p.key, p.ip)
            if sum(q.name == p.name for q in plan.pods) == 1:
                self.targets[p.name] = (p.key, p.ip)

    def emptyline(self) -> bool:
        return False

    def do_get(self, line: str) -> None:
        """get nodes|pods [-o wide] [-n NAMESPACE | -A]"""
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
        else:
            print("usage: get nodes|pods [-o wide] [-n NAMESPACE | -A]")

    def do_describe(self, line: str) -> None:
        """describe pod|node NAME"""
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
        self.run(self.netns_of(target[0]), [self.substitute(a) for a in args[1:]])

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
