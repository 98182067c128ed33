"""The testbed's ingress controller: Ingress objects -> an nginx.conf with ingress-nginx's semantics.

Pure (no root, no subprocess). Input: Manifests.ingresses (Ingresses and IngressClasses, in
manifest order, which stands for creation order) and the ServicesPlan; output: the
controller's model (`controller_config`: servers, locations, upstreams, certificates, warnings),
its nginx.conf text (`render_nginx_conf`, Debian's nginx, core http + ssl modules only), the
certificates to generate (`certificates_needed`), and `route`, an oracle that answers which
backend a request reaches by evaluating the model with nginx's own selection rules.

What the controller does, after kubernetes/ingress-nginx (internal/ingress/controller):
- Class. It implements controller `k8s.io/ingress-nginx`. The IngressClass `nginx` is
  installed with it (as its Helm chart does) unless the manifests declare their own `nginx`.
  An Ingress is served when its class (spec.ingressClassName, else the deprecated annotation,
  else the one IngressClass marked is-default-class, as the API server's admission defaults
  it) is an IngressClass of that controller; every other Ingress is ignored with a warning.
- Servers. One `server` per host of the rules (server_name; `*.example.com` becomes
  ingress-nginx's regex, one label deep as the Ingress API says), plus the default server `_`
  for requests naming no known host and for the rules without a host. A host's `/` goes to the
  defaultBackend of the first Ingress declaring that host, else 404; the default server's `/`
  goes to the defaultBackend of an Ingress (the last declared wins, as in ingress-nginx),
  else 404.
- Locations. Exact `/p` -> `location = /p`. Prefix `/p` -> `location = /p` + `location /p/`:
  path-element matching as the Ingress API defines it (`/foo` matches `/foo`, `/foo/bar`, not
  `/foobar`; a trailing slash is ignored, so Prefix `/foo/` also matches `/foo`: that follows
  the API, where ingress-nginx would answer 301). ImplementationSpecific `/p` -> `location /p`,
  a plain nginx prefix as ingress-nginx renders it (`/foo` does match `/foobar`). nginx picks an
  exact match first, then the longest prefix. When two paths render the same location, Exact
  beats a Prefix's implicit exact location, else the first declared wins (warned).
- Upstreams. One per (namespace, Service, port) named like ingress-nginx's
  (`default-coffee-80`), listing the ready endpoints' podIP:targetPort (the controller
  proxies to endpoints, not to the ClusterIP), TCP only, round robin, no passive health marks.
  A backend without ready endpoints (no Service, no such port, no ready pod) answers 503.
  Requests carry Host, X-Real-IP, X-Forwarded-For (= client address, ingress-nginx's
  default), X-Forwarded-Host/-Port/-Proto and X-Request-ID.
- TLS. Every server listens on the HTTP and the HTTPS port. A host listed in the tls section of
  an Ingress that has a rule for it uses that Secret's certificate (a tls entry without hosts
  covers the Ingress's rule hosts, as a certificate issued for them would); other hosts and the
  default server use the controller's default certificate. Plain-HTTP requests to a host with a
  TLS certificate are redirected (308) to HTTPS unless the Ingress has the annotation
  `nginx.ingress.kubernetes.io/ssl-redirect: "false"`; `force-ssl-redirect: "true"` redirects
  even without TLS.
Not emulated: other nginx.ingress.kubernetes.io annotations (rewrite-target, use-regex, canary,
affinity...), resource backends (their paths fall to the default backend, warned), ExternalName
backends (503, warned), the validating webhook (overlaps are warnings, not rejections).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ..plan.service_model import ServicesPlan
from ..spec.ingress import (IngressBackend, IngressClassSpec, IngressSpec, ingress_classes_of, ingresses_of)
from ..spec.model import ObjectRef

CONTROLLER = "k8s.io/ingress-nginx"
CLASS_NAME = "nginx"                       # the IngressClass installed with the controller
DEFAULT_SERVER = "_"
DEFAULT_UPSTREAM = "upstream-default-backend"
DEFAULT_CERTIFICATE = "default-fake-certificate"   # a key of certificates_needed(); not a Secret
DEFAULT_CERTIFICATE_HOSTS = ("ingress.local",)     # as ingress-nginx's fake certificate
SSL_REDIRECT = "nginx.ingress.kubernetes.io/ssl-redirect"
FORCE_SSL_REDIRECT = "nginx.ingress.kubernetes.io/force-ssl-redirect"
REDIRECT_CODE = 308                        # ingress-nginx's http-redirect-code
_PLAIN_PATH = re.compile(r"^[A-Za-z0-9/\-._~]*$")


def builtin_class() -> IngressClassSpec:
    return IngressClassSpec(ObjectRef("<cluster>", "IngressClass", "", CLASS_NAME), CONTROLLER)


def ingress_classes(items: Iterable[Any]) -> tuple[IngressClassSpec, ...]:
    """The cluster's IngressClasses: the manifests' ones, plus `nginx` unless they define it."""
    classes = ingress_classes_of(items)
    if not any(c.name == CLASS_NAME for c in classes):
        classes = (builtin_class(),) + classes
    return classes


def select_ingresses(items: Iterable[Any], controller: str = CONTROLLER,
                     ) -> tuple[tuple[IngressSpec, ...], tuple[str, ...]]:
    """The Ingresses `controller` serves, in order, and a warning for each one it ignores."""
    items = tuple(items)
    classes = {c.name: c for c in ingress_classes(items)}
    defaults = [c.name for c in classes.values() if c.is_default]
    ours: list[IngressSpec] = []
    warnings: list[str] = []
    for ing in ingresses_of(items):
        name, how = ing.ingress_class_name, "spec.ingressClassName"
        if not name and ing.class_annotation:
            name, how = ing.class_annotation, "the deprecated kubernetes.io/ingress.class annotation"
        if not name:
            if len(defaults) == 1:
                name, how = defaults[0], "the default IngressClass"
            elif len(defaults) > 1:
                warnings.append(f"Ingress {ing.key}: no ingressClassName and {len(defaults)} IngressClasses are "
                                f"marked default ({', '.join(sorted(defaults))}): the API server's admission "
                                "would refuse it; ignored")
                continue
            else:
                warnings.append(f"Ingress {ing.key}: no ingressClassName and no default IngressClass: "
                                f"ignored by the testbed's controller (set ingressClassName: {CLASS_NAME})")
                continue
        cls = classes.get(name)
        if cls is None:
            warnings.append(f"Ingress {ing.key}: IngressClass {name!r} (from {how}) does not exist: ignored")
        elif cls.controller != controller:
            warnings.append(f"Ingress {ing.key}: IngressClass {name!r} belongs to controller {cls.controller!r}, "
                            f"not the testbed's {controller!r}: ignored by our controller")
        else:
            ours.append(ing)
    return tuple(ours), tuple(warnings)


# -- the controller's model --------------------------------------------------------------------

@dataclass(frozen=True)
class Upstream:
    name: str                        # ingress-nginx's upstream name: namespace-service-port
    namespace: str
    service: str
    port: str                        # the backend's port as written: "80" or "http"
    endpoints: tuple[str, ...] = ()  # ready "podIP:targetPort", as ServicesPlan.endpoints sorts them

    @property
    def backend(self) -> str:
        return f"{self.namespace}/{self.service}:{self.port}"


@dataclass(frozen=True)
class Location:
    modifier: str                    # "=" exact, "" prefix
    path: str                        # as nginx compares it (decoded URI)
    upstream: str = ""               # the Upstream's name; "" = the controller's default backend
    status: int = 0                  # returned instead of proxying: 404 (the controller's default
                                     # backend), 503 (the upstream has no ready endpoint); 0 = proxied
    ingress: str = ""                # "ns/name" of the Ingress that defined it, "" = the controller
    source: str = ""                 # "spec.rules[0].http.paths[1]", "spec.defaultBackend", ""
    path_type: str = ""              # Exact | Prefix | ImplementationSpecific | "" (a server's root)
    implicit: bool = False           # the `= /p` that a Prefix `/p` adds, or a server's default root
    ssl_redirect: bool = False       # plain-HTTP requests get a 308 to HTTPS

    @property
    def key(self) -> tuple[str, str]:
        return (self.modifier, self.path)

    @property
    def label(self) -> str:
        return f"= {self.path}" if self.modifier == "=" else self.path


@dataclass(frozen=True)
class Server:
    host: str                        # "_" for the default server
    locations: tuple[Location, ...]
    certificate: str = DEFAULT_CERTIFICATE   # a key of `certificates`
    tls: bool = False                # the host has a certificate from an Ingress's tls section
    ingress: str = ""                # the Ingress that created the server

    @property
    def default(self) -> bool:
        return self.host == DEFAULT_SERVER


@dataclass(frozen=True)
class IngressConfig:
    ingresses: tuple[str, ...]                        # "ns/name" of the Ingresses served
    servers: tuple[Server, ...]                       # the default server first, then by host
    upstreams: tuple[Upstream, ...]                   # by name, those some location uses (maybe empty)
    certificates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def server(self, host: str) -> Server:
        for s in self.servers:
            if s.host == host:
                return s
        raise KeyError(host)

    def upstream(self, name: str) -> Upstream:
        for u in self.upstreams:
            if u.name == name:
                return u
        raise KeyError(name)


class _Builder:
    def __init__(self, services: ServicesPlan) -> None:
        self.services = services
        self.upstreams: dict[tuple[str, str, str], Upstream] = {}
        self.names: set[str] = set()
        self.warnings: list[str] = []
        self.warned: set[tuple[str, str, str]] = set()

    def target(self, ing: IngressSpec, where: str, backend: IngressBackend) -> tuple[str, int]:
        """(upstream name, 0), or (upstream name, 503) when it has no ready endpoint."""
        svc_backend = backend.service
        assert svc_backend is not None
        key = (ing.namespace, svc_backend.name, str(svc_backend.port))
        if key not in self.upstreams:
            name = f"{key[0]}-{key[1]}-{key[2]}"
            while name in self.names:          # ns "a-b"/svc "c" vs ns "a"/svc "b-c": keep both
                name += "-x"
            self.names.add(name)
            self.upstreams[key] = Upstream(name, key[0], key[1], key[2], self._endpoints(ing, where, key))
        up = self.upstreams[key]
        return up.name, 0 if up.endpoints else 503

    def _warn_once(self, key: tuple[str, str, str], message: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            self.warnings.append(message)

    def _endpoints(self, ing: IngressSpec, where: str, key: tuple[str, str, str]) -> tuple[str, ...]:
        ns, name, port = key
        head = f"Ingress {ing.key}: {where}:"
        try:
            svc = self.services.service(ns, name)
        except KeyError:
            self._warn_once(key, f"{head} Service {ns}/{name} does not exist: answers 503")
            return ()
        if svc.type == "ExternalName":
            self._warn_once(key, f"{head} Service {ns}/{name} is of type ExternalName, which the testbed's "
                                 "controller does not proxy to: answers 503")
            return ()
        # ingress-nginx (serviceEndpoints): the first port whose number, targetPort or name is `port`.
        hits = [p for p in svc.ports if str(p.port) == port or str(p.target_port) == port or p.name == port]
        if not hits:
            have = ", ".join(f"{p.name + ' ' if p.name else ''}{p.port}/{p.protocol}" for p in svc.ports) or "none"
            self._warn_once(key, f"{head} Service {ns}/{name} has no port {port} (it has: {have}): answers 503")
            return ()
        sp = hits[0]
        if str(sp.port) != port and sp.name != port:
            self._warn_once(key, f"{head} port {port} is Service {ns}/{name}'s targetPort, not one of its ports; "
                                 f"ingress-nginx accepts it and uses port {sp.port}")
        if sp.protocol != "TCP":
            self._warn_once(key, f"{head} Service {ns}/{name} port {port} is {sp.protocol}; the controller "
                                 "proxies HTTP over TCP only: answers 503")
            return ()
        eps = tuple(str(e) for e in self.services.endpoints(ns, name, sp.name, "TCP") if e.ready)
        if not eps:
            self._warn_once(key, f"{head} Service {ns}/{name} port {port} has no ready endpoint: answers 503 "
                                 "until one is ready")
        return eps


def _redirects(ing: IngressSpec, tls: bool) -> bool:
    if ing.annotations.get(FORCE_SSL_REDIRECT, "") == "true":
        return True
    return tls and ing.annotations.get(SSL_REDIRECT, "true") != "false"


def _locations_of(path_type: str, path: str) -> list[tuple[str, str, bool]]:
    """(modifier, nginx path, implicit) for one Ingress path."""
    if path_type == "Exact":
        return [("=", path, False)]
    if path_type == "Prefix":
        base = path.rstrip("/") or "/"
        return [("", "/", False)] if base == "/" else [("=", base, True), ("", base + "/", False)]
    return [("", path or "/", False)]     # ImplementationSpecific: nginx's own prefix match


def controller_config(items: Iterable[Any], services: ServicesPlan, controller: str = CONTROLLER) -> IngressConfig:
    """What ingress-nginx would configure for the Ingresses of its class in `items`."""
    ours, class_warnings = select_ingresses(items, controller)
    b = _Builder(services)
    warnings = list(class_warnings)

    def default_root(ing: IngressSpec | None, tls: bool) -> Location:
        if ing is None or ing.default_backend is None or ing.default_backend.service is None:
            return Location("", "/", status=404, ingress=ing.key if ing else "", implicit=True,
                            ssl_redirect=ing is not None and _redirects(ing, tls))
        up, status = b.target(ing, "spec.defaultBackend", ing.default_backend)
        return Location("", "/", up, status, ing.key, "spec.defaultBackend", implicit=True,
                        ssl_redirect=_redirects(ing, tls))

    # Certificates: the first Ingress with a rule for the host and a tls entry covering it.
    certs: dict[str, str] = {}
    for ing in ours:
        rule_hosts = [r.host for r in ing.rules if r.host]
        for host in rule_hosts:
            if host in certs:
                continue
            listed = [t for t in ing.tls if host in t.hosts]
            unlisted = [t for t in ing.tls if not t.hosts]
            entry = (listed or unlisted or [None])[0]
            if entry is not None:
                certs[host] = entry.secret_name or DEFAULT_CERTIFICATE
    for ing in ours:
        for i, t in enumerate(ing.tls):
            for host in t.hosts:
                if not any(r.host == host for r in ing.rules):
                    warnings.append(f"Ingress {ing.key}: spec.tls[{i}]: host {host} has no rule in this Ingress: "
                                    "ingress-nginx does not use this certificate for it")

    # The default server: `/` is the last-declared Ingress defaultBackend, else 404.
    for ing in ours:
        if ing.default_backend is not None and ing.default_backend.service is None:
            warnings.append(f"Ingress {ing.key}: spec.defaultBackend: resource backends "
                            f"({ing.default_backend.resource}) are not served by ingress-nginx: the controller's "
                            "default backend (404) answers")
    with_default = [ing for ing in ours if ing.default_backend is not None and ing.default_backend.service]
    distinct = {(i.namespace, str(i.default_backend)) for i in with_default}
    if len(distinct) > 1:
        warnings.append("Ingresses " + ", ".join(i.key for i in with_default) + " each declare a defaultBackend: "
                        f"requests for unknown hosts go to the last one's ({with_default[-1].key}), "
                        "as in ingress-nginx")
    servers: dict[str, dict[tuple[str, str], Location]] = {
        DEFAULT_SERVER: {("", "/"): default_root(with_default[-1] if with_default else None, False)}}
    creators: dict[str, str] = {DEFAULT_SERVER: ""}
    for ing in ours:
        for rule in ing.rules:
            host = rule.host or DEFAULT_SERVER
            if host not in servers:
                servers[host] = {("", "/"): default_root(ing, host in certs)}
                creators[host] = ing.key

    for ing in ours:
        for rule in ing.rules:
            host = rule.host or DEFAULT_SERVER
            locs = servers[host]
            for p in rule.paths:
                if p.backend.service is None:
                    warnings.append(f"Ingress {ing.key}: {p.field}.backend: resource backends ({p.backend.resource}) "
                                    "are not served by ingress-nginx: the path falls to the host's default backend")
                    continue
                up, status = b.target(ing, f"{p.field}.backend", p.backend)
                for modifier, path, implicit in _locations_of(p.path_type, p.path):
                    loc = Location(modifier, path, up, status, ing.key, p.field, p.path_type, implicit,
                                   _redirects(ing, host in certs))
                    old = locs.get(loc.key)
                    # A server's default `/` yields to a path; a Prefix's implicit `= /p` yields to an Exact /p.
                    if old is None or not old.path_type or (old.implicit and not implicit):
                        locs[loc.key] = loc
                    elif not implicit and (old.upstream, old.status) != (loc.upstream, loc.status):
                        where = "every host" if host == DEFAULT_SERVER else host
                        warnings.append(f"Ingress {ing.key}: {p.field}: location {loc.label} of {where} is already "
                                        f"defined by Ingress {old.ingress} {old.source}, which wins")

    out: list[Server] = []
    for host in sorted(servers, key=lambda h: (h != DEFAULT_SERVER, h)):
        locs = sorted(servers[host].values(), key=lambda l: (-len(l.path), l.path, l.modifier))
        cert = certs.get(host, DEFAULT_CERTIFICATE)
        out.append(Server(host, tuple(locs), cert, host in certs, creators[host]))
    used = {l.upstream for s in out for l in s.locations if l.upstream}
    upstreams = tuple(sorted((u for u in b.upstreams.values() if u.name in used), key=lambda u: u.name))
    # Upstreams without endpoints stay in the model (for `route` and reports), not in nginx.conf.
    certificates: dict[str, set[str]] = {DEFAULT_CERTIFICATE: set(DEFAULT_CERTIFICATE_HOSTS)}
    for s in out:
        if s.certificate != DEFAULT_CERTIFICATE:
            certificates.setdefault(s.certificate, set()).add(s.host)
    return IngressConfig(ingresses=tuple(i.key for i in ours), servers=tuple(out), upstreams=upstreams,
                         certificates={k: tuple(sorted(v)) for k, v in sorted(certificates.items())},
                         warnings=tuple(warnings + b.warnings))


def ingress_warnings(items: Iterable[Any], services: ServicesPlan, controller: str = CONTROLLER) -> tuple[str, ...]:
    """Plan-level warnings: ignored Ingresses, backends naming missing Services or ports, overlaps..."""
    return controller_config(items, services, controller).warnings


def certificates_needed(items: Iterable[Any], controller: str = CONTROLLER) -> dict[str, list[str]]:
    """secretName -> the host names its certificate must cover (self-signed, one per name).

    Always holds DEFAULT_CERTIFICATE (the controller's own, for the default server and hosts
    without TLS). Secrets of the same name in several namespaces share one certificate.
    Endpoints do not matter here, so no ServicesPlan is needed.
    """
    empty = ServicesPlan(seed=0, service_subnet="", lb_pool=None, services=(), slices=())
    config = controller_config(items, empty, controller)
    return {k: list(v) for k, v in config.certificates.items()}


def openssl_argv(hosts: Iterable[str], cert_path: str, key_path: str, days: int = 365) -> list[str]:
    """The argv of `openssl req` that makes a self-signed certificate for `hosts` (first = CN)."""
    hosts = list(hosts) or list(DEFAULT_CERTIFICATE_HOSTS)
    return ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", str(days),
            "-keyout", key_path, "-out", cert_path, "-subj", f"/CN={hosts[0]}",
            "-addext", "subjectAltName=" + ",".join(f"DNS:{h}" for h in hosts)]


# -- nginx.conf --------------------------------------------------------------------------------

def _quote(text: str) -> str:
    """A token for nginx's parser: bare when plain, else double-quoted with escapes."""
    if text and _PLAIN_PATH.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def server_name(host: str) -> str:
    """What nginx's server_name says for an Ingress host (ingress-nginx's buildServerName)."""
    if host.startswith("*."):
        return "~^[\\w-]+" + re.sub(r"\.", r"\\.", host[1:]) + "$"
    return host


def _path_for(template: str | Callable[[str], str], secret: str) -> str:
    return template(secret) if callable(template) else template.format(secret=secret)


def render_nginx_conf(items: Iterable[Any], services: ServicesPlan, *, http_port: int = 80, https_port: int = 443,
                      cert_path: str | Callable[[str], str], key_path: str | Callable[[str], str],
                      pid_path: str, prefix_dir: str, controller: str = CONTROLLER) -> str:
    """The complete nginx.conf of the testbed's controller for these Ingresses.

    `cert_path`/`key_path` name each certificate's files: a template with `{secret}` (a key of
    certificates_needed, e.g. "/run/ingress/{secret}.crt") or a function of that key. Logs,
    temporary files go under `prefix_dir` (which must exist). Run it in the foreground with
    `nginx -c FILE -g 'daemon off;'`; check it with `nginx -t -c FILE`; reload with SIGHUP.
    """
    return render_config(controller_config(items, services, controller), http_port=http_port,
                         https_port=https_port, cert_path=cert_path, key_path=key_path, pid_path=pid_path,
                         prefix_dir=prefix_dir)


def render_config(config: IngressConfig, *, http_port: int = 80, https_port: int = 443,
                  cert_path: str | Callable[[str], str], key_path: str | Callable[[str], str],
                  pid_path: str, prefix_dir: str) -> str:
    prefix = prefix_dir.rstrip("/") or "/"
    redirect_port = "" if https_port == 443 else f":{https_port}"
    out: list[str] = [
        "# nginx.conf of the testbed's ingress controller (k8s.io/ingress-nginx semantics),",
        "# generated by testbed.ingress.nginx: do not edit. Run: nginx -c <this file> -g 'daemon off;'",
        "# Ingresses served: " + (", ".join(config.ingresses) or "none"),
        "worker_processes 1;",
        f"pid {_quote(pid_path)};",
        f"error_log {_quote(prefix + '/error.log')} notice;",
        "",
        "events {",
        "    worker_connections 1024;",
        "}",
        "",
        "http {",
        "    log_format upstreaminfo '$remote_addr - $remote_user [$time_local] \"$request\" $status '",
        "                            '$body_bytes_sent \"$http_referer\" \"$http_user_agent\" $request_length '",
        "                            '$request_time [$proxy_upstream_name] $upstream_addr '",
        "                            '$upstream_response_length $upstream_response_time $upstream_status '",
        "                            '$request_id host=$host';",
        f"    access_log {_quote(prefix + '/access.log')} upstreaminfo;",
        f"    client_body_temp_path {_quote(prefix + '/client-body')};",
        f"    proxy_temp_path {_quote(prefix + '/proxy')};",
        f"    fastcgi_temp_path {_quote(prefix + '/fastcgi')};",
        f"    uwsgi_temp_path {_quote(prefix + '/uwsgi')};",
        f"    scgi_temp_path {_quote(prefix + '/scgi')};",
        "    default_type text/plain;",
        "    server_tokens off;",
        "    keepalive_timeout 75s;",
        "    server_names_hash_bucket_size 128;",
        "    server_names_hash_max_size 4096;",
        "    ssl_protocols TLSv1.2 TLSv1.3;",
        "    ssl_session_cache shared:SSL:1m;",
        "    proxy_http_version 1.1;",
        "    proxy_connect_timeout 5s;",
        "    proxy_send_timeout 60s;",
        "    proxy_read_timeout 60s;",
        "    proxy_buffering off;",
        "    proxy_redirect off;",
        "    proxy_next_upstream error timeout;",
        "    proxy_next_upstream_tries 3;",
        "    proxy_set_header Host $http_host;",
        "    proxy_set_header X-Real-IP $remote_addr;",
        "    proxy_set_header X-Forwarded-For $remote_addr;",
        "    proxy_set_header X-Forwarded-Host $http_host;",
        "    proxy_set_header X-Forwarded-Port $server_port;",
        "    proxy_set_header X-Forwarded-Proto $scheme;",
        "    proxy_set_header X-Request-ID $request_id;",
        "    proxy_set_header Connection \"\";",
    ]
    for up in config.upstreams:
        if not up.endpoints:            # nginx refuses an empty upstream; its locations return 503
            continue
        out += ["", f"    # {up.backend}", f"    upstream {up.name} {{"]
        out += [f"        server {ep} max_fails=0;" for ep in up.endpoints]
        out.append("    }")
    for server in config.servers:
        flag = " default_server" if server.default else ""
        out += ["", f"    # {'default server' if server.default else 'host ' + server.host}"
                + (f" (created by Ingress {server.ingress})" if server.ingress else ""),
                "    server {",
                f"        listen {http_port}{flag};",
                f"        listen {https_port} ssl{flag};",
                f"        server_name {server_name(server.host)};",
                f"        ssl_certificate {_quote(_path_for(cert_path, server.certificate))};",
                f"        ssl_certificate_key {_quote(_path_for(key_path, server.certificate))};",
                "        set $proxy_upstream_name \"-\";"]
        for loc in server.locations:
            if not loc.path_type:
                what = (f"Ingress {loc.ingress} spec.defaultBackend" if loc.source else
                        "the controller's default backend (404)")
            else:
                implicit = ", implicit exact" if loc.implicit else ""
                what = f"Ingress {loc.ingress} {loc.source} ({loc.path_type}{implicit})"
            out += ["", f"        # {what}",
                    f"        location {'= ' if loc.modifier == '=' else ''}{_quote(loc.path)} {{",
                    f"            set $proxy_upstream_name \"{loc.upstream or DEFAULT_UPSTREAM}\";"]
            if loc.ssl_redirect:
                out.append(f"            if ($scheme = http) {{ return {REDIRECT_CODE} "
                           f"https://$host{redirect_port}$request_uri; }}")
            if loc.status:
                out.append(f"            return {loc.status};")
            else:
                out.append(f"            proxy_pass http://{loc.upstream};")
            out.append("        }")
        out.append("    }")
    out += ["}", ""]
    return "\n".join(out)


# -- the oracle ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    """Where nginx sends one request: the server and location chosen, and what happens."""

    server: str                      # the server's host ("_" = default server)
    location: str                    # "= /coffee", "/coffee/", "/"
    status: int = 0                  # 0 = proxied to `upstream`; else 404, 503, 301 or 308
    upstream: str = ""               # also for a 503: the upstream that has no ready endpoint
    backend: str = ""                # "ns/service:port" of the upstream
    endpoints: tuple[str, ...] = ()
    redirect: str = ""               # the Location header of a 301/308
    ingress: str = ""


def normalize_host(host: str) -> str:
    """As nginx compares Host: lower-case, without port and trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host
    return host.rsplit(":", 1)[0].rstrip(".") if ":" in host else host.rstrip(".")


def normalize_uri(uri: str) -> str:
    """nginx's $uri: no query, percent-decoded, `//` merged, `.` and `..` segments resolved."""
    path = urllib.parse.unquote(uri.split("?", 1)[0].split("#", 1)[0]) or "/"
    path = re.sub(r"/{2,}", "/", path)
    parts: list[str] = []
    for seg in path.split("/")[1:]:
        if seg == ".":
            continue
        if seg == "..":
            if parts:
                parts.pop()
            continue
        parts.append(seg)
    trailing = path.endswith("/") or path.endswith("/.") or path.endswith("/..")
    out = "/" + "/".join(parts)
    return out + "/" if trailing and not out.endswith("/") else out


def _host_matches(server: Server, host: str) -> bool:
    if server.host.startswith("*."):
        return re.fullmatch(r"[A-Za-z0-9_-]+" + re.escape(server.host[1:]), host) is not None
    return server.host == host


def route(config: IngressConfig, host: str, uri: str, scheme: str = "http") -> Route:
    """The nginx semantics of the rendered configuration, for one request.

    Server: an exact server_name, else the wildcard one, else the default server. Location: an
    exact location equal to the URI, else a prefix location equal to it, else a proxied prefix
    location equal to URI + "/" (nginx answers 301 to add the slash), else the longest prefix.
    """
    name = normalize_host(host)
    servers = [s for s in config.servers if not s.default]
    server = (next((s for s in servers if s.host == name), None)
              or next((s for s in servers if s.host.startswith("*.") and _host_matches(s, name)), None)
              or config.server(DEFAULT_SERVER))
    path = normalize_uri(uri)
    exact = {l.path: l for l in server.locations if l.modifier == "="}
    prefix = {l.path: l for l in server.locations if l.modifier == ""}
    loc = exact.get(path) or prefix.get(path)
    if loc is None:
        slash = prefix.get(path + "/")
        if slash is not None and not slash.status:
            query = "?" + uri.split("?", 1)[1] if "?" in uri else ""
            return Route(server.host, slash.label, 301, redirect=path + "/" + query, ingress=slash.ingress)
        matching = [p for p in prefix if path.startswith(p)]
        loc = prefix[max(matching, key=len)] if matching else None
    if loc is None:
        return Route(server.host, "", 404)
    if loc.ssl_redirect and scheme == "http":
        return Route(server.host, loc.label, REDIRECT_CODE, redirect=f"https://{name}{uri}", ingress=loc.ingress)
    if not loc.upstream:
        return Route(server.host, loc.label, loc.status, ingress=loc.ingress)
    up = config.upstream(loc.upstream)
    return Route(server.host, loc.label, loc.status, up.name, up.backend, up.endpoints, ingress=loc.ingress)
