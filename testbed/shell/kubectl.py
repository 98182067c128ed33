"""kubectl's verbs over the live cluster (a mixin of shell/core.py's ClusterShell).

Reads go through shell/objects.py's Catalog; every change becomes an experiment/changes.py
action (Apply, Delete, DeletePods, Label, Scale) sent through the Live adapter, the path
`apply -f` and the experiment runner use. Objects the shell creates (`create deployment`,
`expose`, `run`) are written as manifests in the shell's private folder and applied.
Each verb returns kubectl's exit status.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from ..errors import TestbedError
from ..plan.model import Plan
from ..views import table
from .describe import describe
from .grammar import NAMESPACED, QUALIFIED, RESOURCES, Args, KubectlError, parse, resource, targets
from .objects import IMAGE, VERSION, Catalog, Obj
from .output import render
from .selectors import field_selector, label_selector

if TYPE_CHECKING:
    from ..experiment.changes import Action
    from ..experiment.rollout import Rollout

# Images are not emulated: the agent serves the port the image's program listens on.
IMAGE_PORTS = {
    "nginx": 80,
    "httpd": 80,
    "caddy": 80,
    "traefik/whoami": 80,
    "redis": 6379,
    "memcached": 11211,
    "mysql": 3306,
    "postgres": 5432,
    "mongo": 27017,
    "rabbitmq": 5672,
}
# the files seeds apply from the network, shipped in manifests/ (no network is ever used)
SHIPPED = {
    "service/networking/nginx-policy.yaml": "seed003-access-nginx.yaml",
    # the StatefulSet Basics tutorial's and the DaemonSet page's examples (manifests/realworld/k8s-website/)
    "application/web/web.yaml": "realworld/k8s-website/web.yaml",
    "controllers/daemonset.yaml": "realworld/k8s-website/daemonset.yaml",
}
URL_PREFIXES = (
    "https://k8s.io/examples/",
    "https://kubernetes.io/examples/",
    "https://raw.githubusercontent.com/kubernetes/website/main/content/en/examples/",
)
MANIFESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "manifests")
MAX_STDIN = 1 << 20
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def _not_found(plural: str, name: str) -> KubectlError:
    group = QUALIFIED[plural].partition(".")[2]
    return KubectlError(
        f'Error from server (NotFound): {plural}{"." + group if group else ""} "{name[:253]}" not found'
    )


def _qualified(o: Any) -> str:
    """`deployment.apps`, `configmap`, `role.rbac.authorization.k8s.io`: how kubectl names an applied
    object's kind, emulated or not."""
    try:
        return QUALIFIED[resource(o.ref.kind)]
    except KubectlError:
        group = getattr(o, "api_version", "v1").rpartition("/")[0]
        kind: str = o.ref.kind
        return kind.lower() + (f".{group}" if group else "")


def _image_port(image: str) -> int | None:
    base = image.rsplit("@", 1)[0]
    base = base.rsplit(":", 1)[0] if ":" in base.rsplit("/", 1)[-1] else base
    return IMAGE_PORTS.get(base.removeprefix("docker.io/").removeprefix("library/"))


def _kv(items: list[str], what: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in items:
        if item.endswith("-") and "=" not in item:
            out[item[:-1]] = None
        elif "=" in item:
            k, _, v = item.partition("=")
            out[k] = v
        else:
            raise KubectlError(f"error: all resources must be specified before {what} changes: {item[:60]}")
    return out


class LiveDoor(Protocol):
    """What the verbs use of shell/live.py's Live (not imported here: live.py runs processes, and this
    module is pure)."""

    @property
    def rollout(self) -> Callable[[Rollout], tuple[Plan, Any]] | None: ...

    def access_log(self, namespace: str, pod: str) -> str: ...


class Kubectl:
    """The verbs; `self` is a ClusterShell (plan, manifests, live, catalog(), age(), events...)."""

    # The state the verbs share with the class that inherits them (shell/core.py's ClusterShell),
    # which sets it in its __init__ and _index.
    plan: Plan
    manifests: Any  # spec/workloads.py's Manifests, or None
    live: LiveDoor
    workdir: str  # the shell's private folder: generated manifests
    targets: dict[str, tuple[str, str, str, bool]]  # name -> (netns key, ip, hostname, is a pod)
    revisions: dict[tuple[str, str], list[str]]  # Deployment -> change causes, for history
    annotations: dict[tuple[str, str, str], dict[str, str]]
    restarts: int
    _cat: Catalog | None

    if TYPE_CHECKING:  # ClusterShell's methods the verbs call; defined there, declared here for mypy

        def catalog(self) -> Catalog:
            raise NotImplementedError

        def age(self, o: Obj) -> str:
            raise NotImplementedError

        def events_of(self, o: Obj) -> list[tuple[str, str, str, str]]:
            raise NotImplementedError

        def change(self, action: Action) -> None:
            raise NotImplementedError

        def exec_in(self, target: tuple[str, str, str, bool], command: str) -> int:
            raise NotImplementedError

        def _index(self) -> None:
            raise NotImplementedError

    # -- reading -------------------------------------------------------------------------
    def _namespace(self, a: Args) -> str | None:
        return None if a.has("--all-namespaces") else a.get("--namespace", "default")

    def _select(self, a: Args, plural: str, names: list[str]) -> list[Obj]:
        cat = self.catalog()
        ns = self._namespace(a)
        objs = [o for o in cat.objects(plural) if ns is None or not o.namespace or o.namespace == ns]
        if a.has("--selector"):
            sel = label_selector(a.value("--selector"))
            objs = [o for o in objs if sel.matches(o.labels)]
        if a.has("--field-selector"):
            test = field_selector(a.value("--field-selector"))
            objs = [o for o in objs if test(o.fields)]
        if names:
            by = {o.name: o for o in objs}
            missing = [n for n in names if n not in by]
            if missing:
                raise _not_found(plural, missing[0])
            objs = [by[n] for n in names]
        return objs

    def kubectl_get(self, words: list[str]) -> int:
        a = parse(
            words,
            {
                "--output": True,
                "--selector": True,
                "--field-selector": True,
                "--show-labels": False,
                "--sort-by": True,
                "--watch": False,
                "--no-headers": False,
                "--filename": True,
            },
        )
        if a.has("--watch"):
            # Only this shell changes the cluster, and a watch would block it: nothing could change.
            raise KubectlError(
                "error: -w/--watch is not supported by this shell: nothing changes the cluster while "
                "it waits; run the command again after a change"
            )
        if a.has("--filename"):
            ts = []
            for f in a.flags["--filename"]:
                ts += [(resource(o.ref.kind), [o.ref.name]) for o in self._objects_in(f)]
        else:
            ts = targets(a.positional)
        groups = []
        for plural, names in ts:
            objs = self._select(a, plural, names)
            if a.has("--sort-by"):
                from .output import sort

                objs = sort(objs, a.value("--sort-by"))
            elif not names:
                objs = sorted(objs, key=lambda o: (o.namespace, o.name))
            groups.append((plural, objs))
        out = a.get("--output", "") or ""
        if not any(g for _, g in groups) and out in ("", "wide"):
            ns = self._namespace(a)
            print(
                "No resources found" + (f" in {ns} namespace." if ns and any(p in NAMESPACED for p, _ in ts) else "."),
                file=sys.stderr,
            )
            return 0
        text = render(
            groups,
            out,
            self._namespace(a) is None,
            a.has("--show-labels"),
            self.age,
            prefix=len(ts) > 1 or (a.positional[0].lower().split(",")[0] == "all" if a.positional else False),
            single=len(ts) == 1 and len(ts[0][1]) == 1,
        )
        if a.has("--no-headers") and out in ("", "wide"):
            text = "\n".join(line for block in text.split("\n\n") for line in block.splitlines()[1:])
        print(text)
        return 0

    def kubectl_describe(self, words: list[str]) -> int:
        a = parse(words, {"--selector": True})
        if not a.positional:
            raise KubectlError("error: You must specify the type of resource to describe.")
        ts = targets(a.positional)
        texts = []
        for plural, names in ts:
            for obj in self._select(a, plural, self._prefixed(a, plural, names)):
                texts.append(describe(self.catalog(), self.plan, obj, self.events_of(obj)))
        if not texts:
            print(f"No resources found in {a.get('--namespace', 'default')} namespace.", file=sys.stderr)
            return 0
        print("\n\n\n".join(texts))
        return 0

    def _prefixed(self, a: Args, plural: str, names: list[str]) -> list[str]:
        """kubectl describe's habit: a name that matches no object stands for every name it begins
        (`describe pod nginx` describes nginx-5dfdd4bdfc-x9czn)."""
        if not names:
            return names
        have = [o.name for o in self._select(a, plural, [])]
        out: list[str] = []
        for n in names:
            out += (
                [n] if n in have or not [h for h in have if h.startswith(n)] else [h for h in have if h.startswith(n)]
            )
        return out

    def kubectl_logs(self, words: list[str]) -> int:
        a = parse(words, {"--container": True, "--follow": False, "--tail": True, "--timestamps": False})
        if len(a.positional) != 1:
            raise KubectlError("error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.")
        name = a.positional[0]
        ns = a.get("--namespace", "default")
        if "/" in name:  # TYPE/NAME: a pod of that controller, as kubectl picks one
            plural, names = targets([name])[0]
            if plural != "pods":
                owner = self.catalog().find(plural, ns, names[0])
                if owner is None:
                    raise _not_found(plural, names[0])
                pods = self.catalog().pods_of(owner.kind, ns, names[0])
                if not pods:
                    raise KubectlError(f"error: {name}: no pods")
                names = [pods[0].name]
            name = names[0]
        pod = self.catalog().find("pods", ns, name)
        if pod is None:
            raise _not_found("pods", name)
        path = self.live.access_log(ns, name)
        if not path:
            raise KubectlError(f"error: logs {name}: this shell has no agent access logs")
        lines: list[str] = []
        for p in (path + ".1", path):
            if path and os.path.exists(p):
                with open(p, encoding="utf-8", errors="replace") as handle:
                    lines += handle.read().splitlines()
        if a.has("--container"):
            lines = [ln for ln in lines if f" container={a.get('--container')} " in f"{ln} "]
        tail = a.get("--tail")
        if tail:
            lines = lines[-int(tail) :] if tail.isdigit() else lines
        if lines:
            print("\n".join(lines))
        if a.has("--follow"):
            return self._follow(path)
        return 0

    def _follow(self, path: str) -> int:
        """`logs -f`: print new lines until Ctrl-C, as kubectl does."""
        size = os.path.getsize(path) if os.path.exists(path) else 0
        try:
            while True:
                time.sleep(0.2)
                if os.path.exists(path) and os.path.getsize(path) > size:
                    with open(path, encoding="utf-8", errors="replace") as handle:
                        handle.seek(size)
                        sys.stdout.write(handle.read())
                        sys.stdout.flush()
                        size = handle.tell()
                elif os.path.exists(path) and os.path.getsize(path) < size:
                    size = 0  # the agent rotated the log
        except KeyboardInterrupt:
            print()
            return 0

    def kubectl_version(self, words: list[str]) -> int:
        parse(words, {"--client": False, "--short": False, "--output": True})
        from .. import __version__

        print(f"Client Version: {VERSION}\nServer Version: {VERSION} (testbed {__version__}: an emulated cluster)")
        return 0

    def kubectl_api_resources(self, words: list[str]) -> int:
        parse(words, {"--namespaced": True, "--output": True})
        rows = [["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]]
        for plural, (kind, aliases) in RESOURCES.items():
            group = QUALIFIED[plural].partition(".")[2]
            api = {
                "apps": "apps/v1",
                "batch": "batch/v1",
                "discovery.k8s.io": "discovery.k8s.io/v1",
                "networking.k8s.io": "networking.k8s.io/v1",
            }.get(group, "v1")
            short = ",".join(a for a in aliases if a != kind.lower()) or ""
            rows.append([plural, short, api, str(plural in NAMESPACED).lower(), kind])
        print(table(rows))
        return 0

    # -- changing ------------------------------------------------------------------------
    def _write(self, kind: str, ns: str, name: str, doc: dict[str, Any]) -> str:
        for field, value in (("metadata.name", name), ("metadata.namespace", ns)):
            if value and not _DNS_NAME.match(value) or len(value) > 253:
                raise KubectlError(
                    f'The {kind.removeprefix("delete-")} "{value[:60]}" is invalid: {field}: '
                    "Invalid value: a lowercase RFC 1123 subdomain must consist of lower case "
                    "alphanumeric characters, '-' or '.'"
                )
        path = os.path.join(self.workdir, f"{kind.lower()}-{ns}-{name}.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(doc, handle, sort_keys=False)
        return path

    def _exists(self, plural: str, ns: str, name: str) -> bool:
        return self.catalog().find(plural, ns, name) is not None

    def _already(self, plural: str, name: str) -> KubectlError:
        group = QUALIFIED[plural].partition(".")[2]
        return KubectlError(
            f'Error from server (AlreadyExists): {plural}{"." + group if group else ""} "{name}" already exists'
        )

    def _apply_files(self, files: list[str]) -> None:
        from ..experiment.changes import Apply

        self.change(Apply(tuple(files)))

    def kubectl_create(self, words: list[str]) -> int:
        if not words or words[0] in ("-f", "--filename") or words[0].startswith("--filename="):
            return self.kubectl_apply(words, verb="create")
        what, rest = words[0], words[1:]
        if what in ("deployment", "deploy"):
            a = parse(rest, {"--image": True, "--replicas": True, "--port": True, "--dry-run": True})
            if len(a.positional) != 1 or not a.has("--image"):
                raise KubectlError(
                    'error: required flag(s) "image" not set'
                    if a.positional
                    else "error: exactly one NAME is required, got 0"
                )
            name, ns, image = a.positional[0], a.get("--namespace", "default"), a.value("--image")
            if self._exists("deployments", ns, name):
                raise self._already("deployments", name)
            port_flag = a.get("--port") or ""
            port = int(port_flag) if port_flag.isdigit() else _image_port(image)
            container: dict[str, Any] = {"name": image.rsplit("/", 1)[-1].split(":")[0].split("@")[0], "image": image}
            if port:
                container["ports"] = [{"containerPort": port}]
            doc = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
                "spec": {
                    "replicas": int(a.get("--replicas", "1")),
                    "selector": {"matchLabels": {"app": name}},
                    # images are not emulated: recorded where experiment/rollout.py records them
                    "template": {
                        "metadata": {"labels": {"app": name}, "annotations": {IMAGE: image}},
                        "spec": {"containers": [container]},
                    },
                },
            }
            self._apply_files([self._write("Deployment", ns, name, doc)])
            print(f"deployment.apps/{name} created")
            return 0
        if what in ("namespace", "ns"):
            a = parse(rest, {})
            if len(a.positional) != 1:
                raise KubectlError(f"error: exactly one NAME is required, got {len(a.positional)}")
            name = a.positional[0]
            if self._exists("namespaces", "", name):
                raise self._already("namespaces", name)
            self._apply_files(
                [
                    self._write(
                        "Namespace", "", name, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                    )
                ]
            )
            print(f"namespace/{name} created")
            return 0
        if what in ("service", "svc"):
            if len(rest) < 2 or rest[0] not in ("clusterip", "nodeport", "loadbalancer"):
                raise KubectlError("error: create service clusterip|nodeport|loadbalancer NAME --tcp=PORT[:TARGET]")
            a = parse(rest[1:], {"--tcp": True, "--node-port": True})
            name, ns = a.positional[0], a.get("--namespace", "default")
            if self._exists("services", ns, name):
                raise self._already("services", name)
            ports: list[dict[str, Any]] = []
            for spec in a.flags.get("--tcp", []):
                port_text, _, target = spec.partition(":")
                ports.append(
                    {
                        "name": f"{port_text}-{target or port_text}",
                        "port": int(port_text),
                        "targetPort": int(target or port_text),
                        "protocol": "TCP",
                    }
                )
                node_port = a.get("--node-port")
                if node_port:
                    ports[-1]["nodePort"] = int(node_port)
            kind = {"clusterip": "ClusterIP", "nodeport": "NodePort", "loadbalancer": "LoadBalancer"}[rest[0]]
            self._service(ns, name, {"app": name}, ports, kind)
            print(f"service/{name} created")
            return 0
        if what == "job":
            return self._create_job(rest)
        raise KubectlError(
            f"error: create {what[:40]}: not supported by this shell "
            "(deployment, namespace, service, job --from=cronjob/NAME; other objects: apply -f FILE)"
        )

    def _create_job(self, rest: list[str]) -> int:
        """`kubectl create job NAME --from=cronjob/CRON`: the CronJob's Job, now (experiment/jobs.py)."""
        from ..experiment.jobs import Trigger

        a = parse(rest, {"--from": True, "--image": True})
        if len(a.positional) != 1:
            raise KubectlError(f"error: exactly one NAME is required, got {len(a.positional)}")
        source = a.get("--from") or ""
        if not source.startswith(("cronjob/", "cj/", "cronjobs/", "cronjob.batch/")):
            raise KubectlError(
                "error: create job: only --from=cronjob/NAME is supported by this shell (other Jobs: apply -f FILE)"
            )
        name, ns, cron = a.positional[0], a.get("--namespace", "default"), source.split("/", 1)[1]
        if self._exists("jobs", ns, name):
            raise self._already("jobs", name)
        if not self._exists("cronjobs", ns, cron):
            raise _not_found("cronjobs", cron)
        self.change(Trigger(cron, ns, name))
        print(f"job.batch/{name} created")
        return 0

    def _service(
        self, ns: str, name: str, selector: Mapping[str, str], ports: list[dict[str, Any]], kind: str = "ClusterIP"
    ) -> None:
        doc = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": dict(selector)},
            "spec": {"type": kind, "selector": dict(selector), "ports": ports},
        }
        self._apply_files([self._write("Service", ns, name, doc)])

    def kubectl_expose(self, words: list[str]) -> int:
        a = parse(
            words,
            {
                "--port": True,
                "--target-port": True,
                "--name": True,
                "--type": True,
                "--protocol": True,
                "--selector": True,
            },
        )
        ((plural, names),) = targets(a.positional) or [("", [])]
        if len(names) != 1:
            raise KubectlError("error: expose TYPE NAME --port=PORT")
        ns = a.get("--namespace", "default")
        cat = self.catalog()
        obj = cat.find(plural, ns, names[0])
        if obj is None:
            raise _not_found(plural, names[0])
        body = obj.body()
        selector = body["spec"].get("selector", {}).get("matchLabels") if plural != "pods" else dict(obj.labels)
        if plural == "services":
            selector = body["spec"].get("selector", {})
        if a.has("--selector"):
            selector = {k: v for k, v in (kv.split("=", 1) for kv in a.value("--selector").split(","))}
        port = a.get("--port")
        if port is None:  # kubectl takes the pods' container port
            pods = [
                p
                for p in self.plan.pods
                if p.namespace == ns and all(p.labels.get(k) == v for k, v in selector.items())
            ]
            port = next((str(q.port) for p in pods for q in p.ports), None)
            if port is None:
                raise KubectlError("error: couldn't find port via --port flag or introspection")
        name = a.get("--name", names[0])
        if self._exists("services", ns, name):
            raise self._already("services", name)
        target = a.get("--target-port", port)
        self._service(
            ns,
            name,
            selector,
            [
                {
                    "port": int(port),
                    "protocol": a.get("--protocol", "TCP"),
                    "targetPort": int(target) if target.isdigit() else target,
                }
            ],
            a.get("--type", "ClusterIP"),
        )
        print(f"service/{name} exposed")
        return 0

    def kubectl_run(self, words: list[str]) -> int:
        a = parse(
            words,
            {
                "--image": True,
                "--labels": True,
                "--port": True,
                "--expose": False,
                "--rm": False,
                "--stdin": False,
                "--tty": False,
                "--restart": True,
                "--command": False,
                "--env": True,
                "--attach": False,
            },
        )
        if len(a.positional) < 1 or not a.has("--image"):
            raise KubectlError(
                "error: NAME is required for run" if not a.positional else 'error: required flag(s) "image" not set'
            )
        name, ns, image = a.positional[0], a.get("--namespace", "default"), a.value("--image")
        command = a.command if a.command is not None else a.positional[1:]
        if self._exists("pods", ns, name):
            raise self._already("pods", name)
        if a.has("--rm") and not a.has("--stdin"):
            raise KubectlError("error: --rm should only be used for attached containers")
        labels = {"run": name}
        if a.has("--labels"):
            labels = {
                k: v for k, v in (kv.split("=", 1) for kv in a.value("--labels").strip("\"'").split(",") if "=" in kv)
            }
        port_flag = a.get("--port") or ""
        port = int(port_flag) if port_flag.isdigit() else _image_port(image)
        container: dict[str, Any] = {"name": name, "image": image}
        if port:
            container["ports"] = [{"containerPort": port}]
        doc = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": [container], "restartPolicy": "Never"},
        }
        path = self._write("Pod", ns, name, doc)
        self._apply_files([path])
        if a.has("--expose"):
            if not port:
                raise KubectlError("error: --port must be set when exposing a service")
            self._service(ns, name, labels, [{"port": port, "targetPort": port, "protocol": "TCP"}])
            print(f"service/{name} created")
        if not a.has("--stdin"):
            print(f"pod/{name} created")
            return 0
        print("If you don't see a command prompt, try pressing enter.")
        status = self.exec_in(self.targets[f"{ns}/{name}"], shlex.join(command) if command else "sh")
        if a.has("--rm"):
            from ..experiment.changes import Delete

            self.change(Delete((path,)))
            print(f'pod "{name}" deleted')
        return status

    def kubectl_exec(self, words: list[str]) -> int:
        a = parse(words, {"--container": True, "--stdin": False, "--tty": False})
        if len(a.positional) != 1 or not a.command:
            raise KubectlError("error: exec POD [-c CONTAINER] -- COMMAND [args...]")
        name = a.positional[0].removeprefix("pod/").removeprefix("pods/")
        ns = a.get("--namespace", "default")
        target = self.targets.get(f"{ns}/{name}")
        if target is None:
            raise _not_found("pods", name)
        pod = self.plan.find_pod(f"{ns}/{name}") if "/" not in name else None
        container = a.get("--container")
        if container and pod is not None and container not in pod.containers:
            raise KubectlError(f"Error from server (BadRequest): container {container} is not valid for pod {name}")
        return self.exec_in(target, shlex.join(a.command))

    def kubectl_label(self, words: list[str], verb: str = "label") -> int:
        from ..experiment.changes import Label, LabelNamespace
        from ..experiment.model import PodSelection
        from ..experiment.nodes import LabelNodes

        a = parse(words, {"--overwrite": False, "--selector": True, "--all": False})
        split = next((i for i, w in enumerate(a.positional) if "=" in w or w.endswith("-")), len(a.positional))
        objs, changes = a.positional[:split], _kv(a.positional[split:], "label")
        if not changes:
            raise KubectlError("error: at least one label update is required")
        ts = targets(objs) if objs else []
        ns = a.get("--namespace", "default")
        for plural, names in ts:
            if not names and not a.has("--selector") and not a.has("--all"):
                raise KubectlError("error: resource(s) were provided, but no name was specified")
            if verb == "label" and plural not in ("pods", "namespaces", "nodes"):
                raise KubectlError(f"error: label {plural}: not supported by this shell (pods, namespaces, nodes)")
            for obj in self._select(a, plural, names):
                current = obj.labels if verb == "label" else obj.annotations
                for k, v in changes.items():
                    if v is not None and k in current and current[k] != v and not a.has("--overwrite"):
                        raise KubectlError(
                            f"error: '{k}' already has a value ({current[k][:60]}), and --overwrite is false"
                        )
                if verb == "annotate":
                    self._annotate(plural, obj, changes)
                elif plural == "namespaces":
                    self.change(LabelNamespace(obj.name, changes))
                elif plural == "nodes":  # DaemonSets follow (experiment/nodes.py)
                    self.change(LabelNodes((obj.name,), changes))
                else:
                    self.change(Label(PodSelection(namespace=ns, names=(obj.name,)), changes))
                removed_only = all(v is None for v in changes.values())
                print(
                    f"{QUALIFIED[plural]}/{obj.name} "
                    + ("annotated" if verb == "annotate" else "unlabeled" if removed_only else "labeled")
                )
        return 0

    def _annotate(self, plural: str, obj: Any, changes: dict[str, str | None]) -> None:
        """Annotations are the shell's own record (they change no packet); bounded like the API's."""
        key = (plural, obj.namespace, obj.name)
        new = dict(self.annotations.get(key, {}))
        for k, v in changes.items():
            if v is None:
                new.pop(k, None)
            else:
                new[k] = v
        if sum(len(k) + len(v) for k, v in new.items()) > 256 * 1024:
            raise KubectlError("error: metadata.annotations: Too long: must have at most 262144 bytes")
        self.annotations[key] = new
        self._cat = None

    def kubectl_scale(self, words: list[str]) -> int:
        from ..experiment.changes import Scale
        from ..experiment.statefulsets import stages

        a = parse(words, {"--replicas": True, "--current-replicas": True})
        if not (a.get("--replicas") or "").isdigit():
            raise KubectlError(
                "error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0"
            )
        ns = a.get("--namespace", "default")
        for plural, names in targets(a.positional):
            if plural not in ("deployments", "replicasets", "replicationcontrollers", "statefulsets"):
                raise KubectlError(f"error: cannot scale {plural}")
            for obj in self._select(a, plural, names):
                # an OrderedReady StatefulSet: one pod at a time (experiment/statefulsets.py)
                for stage in stages(
                    Scale(RESOURCES[plural][0], obj.name, int(a.value("--replicas")), ns), self.manifests
                ):
                    self.change(stage)
                print(f"{QUALIFIED[plural]}/{obj.name} scaled")
        return 0

    def kubectl_rollout(self, words: list[str]) -> int:
        from ..experiment.rollout import Rollout

        a = parse(words, {"--watch": False, "--revision": True, "--to-revision": True, "--timeout": True})
        if not a.positional or a.positional[0] not in ("status", "history", "undo", "restart"):
            raise KubectlError("error: rollout status|history|undo|restart TYPE NAME")
        sub = a.positional[0]
        ts = targets(a.positional[1:])
        if len(ts) != 1 or len(ts[0][1]) != 1:
            raise KubectlError(f"error: rollout {sub} TYPE NAME (one object)")
        ((plural, names),) = ts
        if plural != "deployments":
            raise KubectlError(f"error: rollout {sub} {plural}: not supported by this shell (deployments)")
        obj = self._select(a, plural, names)[0]
        key = (obj.namespace, obj.name)
        if sub == "status":
            print(f'deployment "{obj.name}" successfully rolled out')
            return 0
        if sub == "history":
            if a.get("--to-revision") or a.get("--revision"):
                raise KubectlError("error: rollout history --revision: not supported by this shell")
            rows = [["REVISION", "CHANGE-CAUSE"]] + [
                [str(i + 1), cause] for i, cause in enumerate(self.revisions.get(key, ["<none>"]))
            ]
            print(f"deployment.apps/{obj.name} \n" + "\n".join(f"{r[0]:<10}{r[1]}" for r in rows))
            return 0
        if a.get("--to-revision"):
            raise KubectlError("error: rollout undo --to-revision: not supported by this shell (the previous one only)")
        if sub == "undo":
            self.roll(Rollout(obj.name, obj.namespace, undo=True), key, "rollout undo")
            print(f"deployment.apps/{obj.name} rolled back")
            return 0
        image = obj.wide[1] if obj.wide[1] != "<emulated>" else obj.name
        self.restarts += 1
        self.roll(
            Rollout(obj.name, obj.namespace, image=f"{image.split('#')[0]}#restart-{self.restarts}"),
            key,
            "rollout restart",
        )
        print(f"deployment.apps/{obj.name} restarted")
        return 0

    def roll(self, action: Rollout, key: tuple[str, str], cause: str) -> None:
        """A rolling update through the Live adapter; its revision recorded for `rollout history`."""
        if self.live.rollout is None:
            raise KubectlError("error: this shell cannot roll out")
        try:
            self.plan, self.manifests = self.live.rollout(action)
        except TestbedError as exc:
            raise KubectlError(f"error: {exc}") from None
        self.revisions.setdefault(key, ["<none>"]).append(cause)
        self._index()

    def kubectl_set(self, words: list[str]) -> int:
        from ..experiment.rollout import Rollout

        if not words or words[0] != "image":
            raise KubectlError(f"error: set {(words or [''])[0][:40]}: not supported by this shell (set image)")
        a = parse(words[1:], {"--record": False})
        split = next((i for i, w in enumerate(a.positional) if "=" in w), len(a.positional))
        images = _kv(a.positional[split:], "image")
        ts = targets(a.positional[:split])
        if not images or any(v is None for v in images.values()):
            raise KubectlError("error: set image TYPE NAME CONTAINER=IMAGE")
        for plural, names in ts:
            if plural != "deployments":
                raise KubectlError(f"error: set image {plural}: not supported by this shell (deployments)")
            for obj in self._select(a, plural, names):
                containers = obj.wide[0].split(",")
                unknown = [c for c in images if c != "*" and c not in containers]
                if unknown:
                    raise KubectlError(f'error: unable to find container named "{unknown[0]}"')
                image = ",".join(str(v) for v in images.values())
                self.roll(
                    Rollout(obj.name, obj.namespace, image=image), (obj.namespace, obj.name), f"set image {image}"
                )
                print(f"deployment.apps/{obj.name} image updated")
        return 0

    def kubectl_delete(self, words: list[str]) -> int:
        from ..experiment.changes import Delete, DeletePods
        from ..experiment.model import PodSelection

        a = parse(
            words,
            {
                "--filename": True,
                "--selector": True,
                "--all": False,
                "--now": False,
                "--grace-period": True,
                "--force": False,
                "--wait": False,
                "--recursive": False,
            },
        )
        if a.has("--filename"):
            files = [f for name in a.flags["--filename"] for f in self._files(name, a.has("--recursive"))]
            objs = [o for f in files for o in self._objects_in(f)]
            self.change(Delete(tuple(files)))
            for o in objs:
                print(f'{_qualified(o)} "{o.ref.name}" deleted')
            return 0
        if not a.positional:
            raise KubectlError("error: You must provide one or more resources by argument or filename.")
        ns = a.get("--namespace", "default")
        if not a.has("--selector") and len(a.positional) == 1 and "/" not in a.positional[0] and not a.has("--all"):
            raise KubectlError("error: resource(s) were provided, but no name was specified")
        for plural, names in targets(a.positional):
            objs = self._select(a, plural, names)
            if plural == "pods":
                if objs:
                    self.change(DeletePods(PodSelection(namespace=ns, names=tuple(o.name for o in objs))))
            elif objs:
                self.change(Delete(tuple(self._stub(plural, o) for o in objs)))
            for o in objs:
                print(f'{QUALIFIED[plural]} "{o.name}" deleted')
            if not objs:
                print("No resources found", file=sys.stderr)
        return 0

    def _stub(self, plural: str, obj: Obj) -> str:
        """A minimal valid manifest naming `obj`, for Delete (which removes by kind/ns/name)."""
        kind = RESOURCES[plural][0]
        meta = {"name": obj.name, **({"namespace": obj.namespace} if obj.namespace else {})}
        tmpl = {"metadata": {"labels": {"x": "y"}}, "spec": {"containers": [{"name": "c"}]}}
        job_tmpl = {"spec": {"containers": [{"name": "c"}], "restartPolicy": "Never"}}
        spec = {
            "deployments": {"selector": {"matchLabels": {"x": "y"}}, "template": tmpl},
            "replicasets": {"selector": {"matchLabels": {"x": "y"}}, "template": tmpl},
            "statefulsets": {"selector": {"matchLabels": {"x": "y"}}, "template": tmpl, "serviceName": "x"},
            "daemonsets": {"selector": {"matchLabels": {"x": "y"}}, "template": tmpl},
            "jobs": {"template": job_tmpl},
            "cronjobs": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": job_tmpl}}},
            "replicationcontrollers": {"selector": {"x": "y"}, "template": tmpl},
            "services": {"ports": [{"port": 1}]},
            "networkpolicies": {"podSelector": {}},
            "ingresses": {"defaultBackend": {"service": {"name": "x", "port": {"number": 1}}}},
        }.get(plural)
        if plural in ("nodes", "endpoints", "endpointslices"):
            raise KubectlError(f"error: delete {plural}: not supported by this shell")
        api = {
            "deployments": "apps/v1",
            "replicasets": "apps/v1",
            "statefulsets": "apps/v1",
            "daemonsets": "apps/v1",
            "jobs": "batch/v1",
            "cronjobs": "batch/v1",
            "networkpolicies": "networking.k8s.io/v1",
            "ingresses": "networking.k8s.io/v1",
        }.get(plural, "v1")
        doc: dict[str, Any] = {"apiVersion": api, "kind": kind, "metadata": meta}
        if spec is not None:
            doc["spec"] = spec
        return self._write(f"delete-{kind}", obj.namespace, obj.name, doc)

    # -- files -----------------------------------------------------------------------------
    def _files(self, name: str, recursive: bool = False) -> list[str]:
        """-f FILE | DIR | - | URL -> local files (URLs of the seeds: shipped copies, no network)."""
        if name == "-":
            data = sys.stdin.read(MAX_STDIN + 1)
            if len(data) > MAX_STDIN:
                raise KubectlError("error: -f -: more than 1 MiB on stdin")
            path = os.path.join(self.workdir, f"stdin-{time.monotonic_ns()}.yaml")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(data)
            return [path]
        if "://" in name:
            rest = next((name[len(p) :] for p in URL_PREFIXES if name.startswith(p)), None)
            local = os.path.join(MANIFESTS, SHIPPED[rest]) if rest in SHIPPED else ""
            if not local or not os.path.exists(local):
                raise KubectlError(
                    f"error: {name[:120]}: no network in the emulation, and no shipped copy of this "
                    "URL (download it and use -f FILE)"
                )
            print(f"note: using the shipped copy of {name} (no network): {os.path.relpath(local)}", file=sys.stderr)
            return [local]
        if os.path.isdir(name):  # kubectl's order, -R for subfolders (spec/inputs.py)
            from ..spec.inputs import expand_inputs

            return expand_inputs([name], recursive)
        if not os.path.exists(name):
            raise KubectlError(f'error: the path "{name[:200]}" does not exist')
        return [name]

    def _objects_in(self, path: str) -> list[Any]:
        from ..spec.workloads import load_manifests

        # no manifests yet: the namespaces every cluster has (as shell/objects.py lists them)
        existing = self.manifests.namespace_names() if self.manifests else ("default", "kube-system")
        m = load_manifests([path], namespaces=existing)
        from types import SimpleNamespace

        spaces = [
            SimpleNamespace(ref=SimpleNamespace(kind="Namespace", name=n.name, namespace="")) for n in m.namespaces
        ]
        return [*spaces, *m.pods, *m.workloads, *m.services, *m.policies, *m.ingresses, *getattr(m, "others", ())]

    def kubectl_apply(self, words: list[str], verb: str = "apply") -> int:
        from ..experiment.changes import Apply

        a = parse(
            words,
            {"--filename": True, "--recursive": False, "--dry-run": True, "--server-side": False, "--force": False},
        )
        if not a.has("--filename"):
            raise KubectlError("error: must specify one of -f and -k")
        files = [f for name in a.flags["--filename"] for f in self._files(name, a.has("--recursive"))]
        objs = [o for f in files for o in self._objects_in(f)]
        known = set(self._keys())
        if verb == "create":
            for o in objs:
                if (o.ref.kind, o.ref.namespace, o.ref.name) in known:
                    raise KubectlError(
                        f'Error from server (AlreadyExists): {_qualified(o)} "{o.ref.name}" already exists'
                    )
        self.change(Apply(tuple(files)))
        for o in objs:
            existed = (o.ref.kind, o.ref.namespace, o.ref.name) in known
            print(f"{_qualified(o)}/{o.ref.name} {'configured' if existed else 'created'}")
        return 0

    def _keys(self) -> list[tuple[str, str, str]]:
        """(kind, namespace, name) of every object in the desired state, emulated or not."""
        m = self.manifests
        if m is None:
            return []
        return [("Namespace", "", n.name) for n in m.namespaces] + [
            (o.ref.kind, o.ref.namespace, o.ref.name)
            for o in (*m.pods, *m.workloads, *m.services, *m.policies, *m.ingresses, *getattr(m, "others", ()))
        ]
