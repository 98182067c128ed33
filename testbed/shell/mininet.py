"""Mininet's CLI habits in the shell: help, nodes, net, links, dump, pingall, pingallfull,
pingpair, iperf, and an answer for xterm (no display here).

Each function takes the ClusterShell and the rest of the line and returns an exit status.
Probing runs through the Live adapter's capture (bounded in count and time).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from ..plan.model import Plan

Target = tuple[str, str, str, bool]  # (netns key, ip, hostname, is a pod)
Capture = Callable[[str, list[str]], tuple[int, str]]  # (netns key, argv) -> (status, stdout), bounded


class Probe(Protocol):
    """What these commands use of shell/live.py's Live (not imported: it runs processes)."""

    @property
    def capture(self) -> Capture | None: ...


class Shell(Protocol):
    """What these commands use of shell/core.py's ClusterShell."""

    @property
    def plan(self) -> Plan: ...

    @property
    def targets(self) -> dict[str, Target]: ...

    @property
    def live(self) -> Probe: ...


MAX_PING_HOSTS = 64  # pingall is all pairs: n*(n-1) pings

HELP = """\
Commands (a leading `kubectl` is optional; kubectl's errors and exit statuses):
  get TYPE[,TYPE] [NAME...|TYPE/NAME] [-n NS|-A] [-l SELECTOR] [--field-selector F=V]
      [-o wide|yaml|json|name|jsonpath=...|custom-columns=...] [--show-labels] [--sort-by=PATH]
      types: pods po, services svc, deployments deploy, replicasets rs, statefulsets sts, daemonsets ds,
      jobs, cronjobs cj, endpoints ep, endpointslices, networkpolicies netpol, ingresses ing, namespaces ns, nodes no, all
  describe TYPE NAME        pod, node, svc, ep, netpol, deploy, sts, ds, job, cj, ns (with Events)
  create deployment NAME --image=IMG [--replicas=N] [--port=P] | create namespace NAME
  create service clusterip|nodeport NAME --tcp=PORT[:TARGET]   create job NAME --from=cronjob/CJ
  expose deployment|pod|svc NAME --port=P [--target-port=T] [--type=T] [--name=N]
  run NAME --image=IMG [--labels=k=v,...] [--port=P] [--expose] [--rm -ti -- CMD]
  apply -f FILE|DIR|-|URL   delete TYPE NAME | -f FILE | TYPE -l SELECTOR
  label pod|ns|node NAME k=v [k-] [--overwrite]    annotate TYPE NAME k=v [k-] [--overwrite]
  scale deployment|statefulset NAME --replicas=N
  set image deployment/NAME C=IMAGE      rollout status|history|undo|restart deployment NAME
  version   api-resources
  exec [-ti] POD [-c C] -- CMD              logs POD|deploy/NAME [-f] [--tail=N]: who connected, from where
Mininet's:
  <pod|node|host> CMD       run CMD with /bin/sh -c in that namespace (pipes, ;, &&, $? work);
                            names of pods, nodes and hosts in CMD become their IPs.
                            <pod> sh opens a shell in the pod (exit returns here)
  nodes  net  links  dump   the emulated hosts and their links
  pingall [-A]  pingallfull [-A]   ping between every two pods (-A: nodes too)
  pingpair A B   iperf A B        help   exit (or Ctrl-D: tears the cluster down)
Faults (each undone by recover; `fault list`, `fault timers timeScale=0.01`):
  fault KIND key=value...   node-down|link-down|partition|loss|rate|mtu|kill-pod|delete-pod|dns-down|
                            kube-proxy-down|bird-down, e.g. fault loss node=kind-worker percent=20
  recover KIND key=value... | recover all
  probe fail|pass POD [readiness|liveness|startup]   a pod's probe fails or passes (played in time)
Examples:
  kubectl get svc,pod        get pods -l app=nginx -o wide       busybox wget --spider --timeout=1 nginx
  kind-worker iptables-save -t nat | grep KUBE-SVC             busybox sh"""


def _help(shell: Shell, _rest: str) -> int:
    print(HELP)
    return 0


def _nodes(shell: Shell, _rest: str) -> int:
    names = (
        [n.name for n in shell.plan.nodes] + [x.name for x in shell.plan.externals] + [p.name for p in shell.plan.pods]
    )
    print("available nodes are: \n" + " ".join(names))
    return 0


def _net(shell: Shell, _rest: str) -> int:
    plan = shell.plan
    for n in plan.nodes:
        pods = plan.pods_on(n.name)
        print(f"{n.name} eth0:underlay {n.bridge}:" + ",".join(f"{p.host_veth}" for p in pods))
    for x in plan.externals:
        print(f"{x.name} eth0:underlay")
    for p in plan.pods:
        print(f"{p.name} eth0:{p.node}-{p.host_veth}")
    return 0


def _links(shell: Shell, _rest: str) -> int:
    for p in shell.plan.pods:
        print(f"{p.name}-eth0<->{p.node}-{p.host_veth} (OK OK)")
    for n in shell.plan.nodes:
        print(f"{n.name}-eth0<->underlay (OK OK)")
    return 0


def _dump(shell: Shell, _rest: str) -> int:
    for n in shell.plan.nodes:
        print(f"<Node {n.name}: eth0:{n.host_ip},{n.bridge}:{n.gateway}>")
    for x in shell.plan.externals:
        print(f"<Host {x.name}: eth0:{x.ip}>")
    for p in shell.plan.pods:
        print(f"<Pod {p.namespace}/{p.name}: eth0:{p.ip} on {p.node}>")
    return 0


def _hosts(shell: Shell, rest: str) -> list[tuple[str, Target]]:
    words = rest.split()
    hosts = [(p.name, shell.targets[f"{p.namespace}/{p.name}"]) for p in shell.plan.pods]
    if "-A" in words:
        hosts += [(n.name, shell.targets[n.name]) for n in shell.plan.nodes]
    return hosts


def _ping_from(capture: Capture, src: Target, dsts: list[tuple[str, str]]) -> dict[str, str]:
    """One source pings every destination in parallel; name -> rtt text or "X"."""
    script = (
        " ".join(
            f"(ping -c1 -W1 -n {ip} 2>/dev/null | sed -n 's/.*time=\\([0-9.]*\\).*/{name} \\1/p' "
            f"| grep . || echo '{name} X') &"
            for name, ip in dsts
        )
        + " wait"
    )
    status, out = capture(src[0], ["/bin/sh", "-c", script])
    if status and not out:
        print(f"*** pingall: the probe from {src[2]} failed (status {status})")
    got = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    return {name: got.get(name, "X") for name, _ in dsts}


def _capture(shell: Shell) -> Capture | None:
    """The Live adapter's capture, or None (said) when this shell has no live cluster to probe."""
    if shell.live.capture is None:
        print("*** this shell cannot probe (no live cluster)")
    return shell.live.capture


def _pingall(shell: Shell, rest: str, full: bool = False) -> int:
    capture = _capture(shell)
    if capture is None:
        return 1
    hosts = _hosts(shell, rest)
    if len(hosts) > MAX_PING_HOSTS:
        print(f"*** pingall: {len(hosts)} hosts is more than {MAX_PING_HOSTS}; use pingpair A B or <pod> ping")
        return 1
    print("*** Ping: testing ping reachability")
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda h: _ping_from(capture, h[1], [(n, t[1]) for n, t in hosts if n != h[0]]), hosts))
    sent = lost = 0
    for (name, _), res in zip(hosts, results):
        sent += len(res)
        lost += sum(v == "X" for v in res.values())
        if full:
            for dst, v in res.items():
                print(f" {name} -> {dst}: " + ("0/1, rtt X" if v == "X" else f"1/1, rtt {v} ms"))
        else:
            print(f"{name} -> " + " ".join(dst if v != "X" else "X" for dst, v in res.items()))
    pct = 100 * lost // sent if sent else 0
    print(f"*** Results: {pct}% dropped ({sent - lost}/{sent} received)")
    return 0 if lost == 0 else 1


def _pingpair(shell: Shell, rest: str) -> int:
    words = rest.split()
    if len(words) != 2 or any(w not in shell.targets for w in words):
        print("usage: pingpair POD|NODE POD|NODE")
        return 2
    capture = _capture(shell)
    if capture is None:
        return 1
    a, b = (shell.targets[w] for w in words)
    return _pingall_of(capture, [(words[0], a), (words[1], b)])


def _pingall_of(capture: Capture, hosts: list[tuple[str, Target]]) -> int:
    lost = 0
    for name, t in hosts:
        res = _ping_from(capture, t, [(n, u[1]) for n, u in hosts if n != name])
        lost += sum(v == "X" for v in res.values())
        print(f"{name} -> " + " ".join(d if v != "X" else "X" for d, v in res.items()))
    print(f"*** Results: {100 * lost // (2 if hosts else 1)}% dropped ({2 - lost}/2 received)")
    return 0 if lost == 0 else 1


def _iperf(shell: Shell, rest: str) -> int:
    words = rest.split()
    if len(words) != 2 or any(w not in shell.targets for w in words):
        print("usage: iperf CLIENT SERVER   (TCP for 2 s with iperf3)")
        return 2
    capture = _capture(shell)
    if capture is None:
        return 1
    client, server = (shell.targets[w] for w in words)
    print(f"*** Iperf: testing TCP bandwidth between {words[0]} and {words[1]}")
    status, out = capture(server[0], ["/bin/sh", "-c", "timeout 10 iperf3 -s -1 -p 5201 >/dev/null 2>&1 & sleep 0.3"])
    status, out = capture(client[0], ["iperf3", "-c", server[1], "-t", "2", "-p", "5201", "-f", "m"])
    lines = [ln for ln in out.splitlines() if "receiver" in ln or "sender" in ln]
    print("\n".join(lines) if lines else out.strip()[-300:])
    return status


def _xterm(shell: Shell, rest: str) -> int:
    name = rest.split()[0] if rest.split() else "<name>"
    print(f"*** no display in this shell: use `{name[:60]} sh` for a shell in a pod, node or host")
    return 1


COMMANDS: dict[str, Callable[[Shell, str], int]] = {
    "help": _help,
    "?": _help,
    "nodes": _nodes,
    "net": _net,
    "links": _links,
    "dump": _dump,
    "pingall": _pingall,
    "pingallfull": lambda s, r: _pingall(s, r, True),
    "pingpair": _pingpair,
    "iperf": _iperf,
    "xterm": _xterm,
    "gterm": _xterm,
    "x": _xterm,
}
