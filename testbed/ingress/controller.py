"""What ingress-nginx configures for the Ingresses it serves: Ingresses + ServicesPlan -> the model.

Pure. `controller_config` returns the model (model.py: servers, locations, upstreams,
certificates, warnings); `ingress_warnings` the plan-level warnings. Which Ingresses are served
is classes.py. What the controller does, after kubernetes/ingress-nginx
(internal/ingress/controller):
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

from collections.abc import Iterable
from typing import Any

from ..plan.service_model import ServicesPlan
from ..spec.ingress import IngressBackend, IngressSpec
from .classes import select_ingresses
from .model import (
    CONTROLLER,
    DEFAULT_CERTIFICATE,
    DEFAULT_CERTIFICATE_HOSTS,
    DEFAULT_SERVER,
    FORCE_SSL_REDIRECT,
    SSL_REDIRECT,
    IngressConfig,
    Location,
    Server,
    Upstream,
)


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
            while name in self.names:  # ns "a-b"/svc "c" vs ns "a"/svc "b-c": keep both
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
            self._warn_once(
                key,
                f"{head} Service {ns}/{name} is of type ExternalName, which the testbed's "
                "controller does not proxy to: answers 503",
            )
            return ()
        # ingress-nginx (serviceEndpoints): the first port whose number, targetPort or name is `port`.
        hits = [p for p in svc.ports if str(p.port) == port or str(p.target_port) == port or p.name == port]
        if not hits:
            have = ", ".join(f"{p.name + ' ' if p.name else ''}{p.port}/{p.protocol}" for p in svc.ports) or "none"
            self._warn_once(key, f"{head} Service {ns}/{name} has no port {port} (it has: {have}): answers 503")
            return ()
        sp = hits[0]
        if str(sp.port) != port and sp.name != port:
            self._warn_once(
                key,
                f"{head} port {port} is Service {ns}/{name}'s targetPort, not one of its ports; "
                f"ingress-nginx accepts it and uses port {sp.port}",
            )
        if sp.protocol != "TCP":
            self._warn_once(
                key,
                f"{head} Service {ns}/{name} port {port} is {sp.protocol}; the controller "
                "proxies HTTP over TCP only: answers 503",
            )
            return ()
        eps = tuple(str(e) for e in self.services.endpoints(ns, name, sp.name, "TCP") if e.ready)
        if not eps:
            self._warn_once(
                key, f"{head} Service {ns}/{name} port {port} has no ready endpoint: answers 503 until one is ready"
            )
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
    return [("", path or "/", False)]  # ImplementationSpecific: nginx's own prefix match


def controller_config(items: Iterable[Any], services: ServicesPlan, controller: str = CONTROLLER) -> IngressConfig:
    """What ingress-nginx would configure for the Ingresses of its class in `items`."""
    ours, class_warnings = select_ingresses(items, controller)
    b = _Builder(services)
    warnings = list(class_warnings)

    def default_root(ing: IngressSpec | None, tls: bool) -> Location:
        if ing is None or ing.default_backend is None or ing.default_backend.service is None:
            return Location(
                "",
                "/",
                status=404,
                ingress=ing.key if ing else "",
                implicit=True,
                ssl_redirect=ing is not None and _redirects(ing, tls),
            )
        up, status = b.target(ing, "spec.defaultBackend", ing.default_backend)
        return Location(
            "", "/", up, status, ing.key, "spec.defaultBackend", implicit=True, ssl_redirect=_redirects(ing, tls)
        )

    # Certificates: the first Ingress with a rule for the host and a tls entry covering it.
    certs: dict[str, str] = {}
    for ing in ours:
        rule_hosts = [r.host for r in ing.rules if r.host]
        for host in rule_hosts:
            if host in certs:
                continue
            listed = [t for t in ing.tls if host in t.hosts]
            unlisted = [t for t in ing.tls if not t.hosts]
            entry = (listed or unlisted)[0] if listed or unlisted else None
            if entry is not None:
                certs[host] = entry.secret_name or DEFAULT_CERTIFICATE
    for ing in ours:
        for i, t in enumerate(ing.tls):
            for host in t.hosts:
                if not any(r.host == host for r in ing.rules):
                    warnings.append(
                        f"Ingress {ing.key}: spec.tls[{i}]: host {host} has no rule in this Ingress: "
                        "ingress-nginx does not use this certificate for it"
                    )

    # The default server: `/` is the last-declared Ingress defaultBackend, else 404.
    for ing in ours:
        if ing.default_backend is not None and ing.default_backend.service is None:
            warnings.append(
                f"Ingress {ing.key}: spec.defaultBackend: resource backends "
                f"({ing.default_backend.resource}) are not served by ingress-nginx: the controller's "
                "default backend (404) answers"
            )
    with_default = [ing for ing in ours if ing.default_backend is not None and ing.default_backend.service]
    distinct = {(i.namespace, str(i.default_backend)) for i in with_default}
    if len(distinct) > 1:
        warnings.append(
            "Ingresses " + ", ".join(i.key for i in with_default) + " each declare a defaultBackend: "
            f"requests for unknown hosts go to the last one's ({with_default[-1].key}), "
            "as in ingress-nginx"
        )
    servers: dict[str, dict[tuple[str, str], Location]] = {
        DEFAULT_SERVER: {("", "/"): default_root(with_default[-1] if with_default else None, False)}
    }
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
                    warnings.append(
                        f"Ingress {ing.key}: {p.field}.backend: resource backends ({p.backend.resource}) "
                        "are not served by ingress-nginx: the path falls to the host's default backend"
                    )
                    continue
                up, status = b.target(ing, f"{p.field}.backend", p.backend)
                for modifier, path, implicit in _locations_of(p.path_type, p.path):
                    loc = Location(
                        modifier,
                        path,
                        up,
                        status,
                        ing.key,
                        p.field,
                        p.path_type,
                        implicit,
                        _redirects(ing, host in certs),
                    )
                    old = locs.get(loc.key)
                    # A server's default `/` yields to a path; a Prefix's implicit `= /p` yields to an Exact /p.
                    if old is None or not old.path_type or (old.implicit and not implicit):
                        locs[loc.key] = loc
                    elif not implicit and (old.upstream, old.status) != (loc.upstream, loc.status):
                        where = "every host" if host == DEFAULT_SERVER else host
                        warnings.append(
                            f"Ingress {ing.key}: {p.field}: location {loc.label} of {where} is already "
                            f"defined by Ingress {old.ingress} {old.source}, which wins"
                        )

    out: list[Server] = []
    for host in sorted(servers, key=lambda h: (h != DEFAULT_SERVER, h)):
        ordered = sorted(servers[host].values(), key=lambda loc: (-len(loc.path), loc.path, loc.modifier))
        cert = certs.get(host, DEFAULT_CERTIFICATE)
        out.append(Server(host, tuple(ordered), cert, host in certs, creators[host]))
    used = {loc.upstream for s in out for loc in s.locations if loc.upstream}
    upstreams = tuple(sorted((u for u in b.upstreams.values() if u.name in used), key=lambda u: u.name))
    # Upstreams without endpoints stay in the model (for `route` and reports), not in nginx.conf.
    certificates: dict[str, set[str]] = {DEFAULT_CERTIFICATE: set(DEFAULT_CERTIFICATE_HOSTS)}
    for s in out:
        if s.certificate != DEFAULT_CERTIFICATE:
            certificates.setdefault(s.certificate, set()).add(s.host)
    return IngressConfig(
        ingresses=tuple(i.key for i in ours),
        servers=tuple(out),
        upstreams=upstreams,
        certificates={k: tuple(sorted(v)) for k, v in sorted(certificates.items())},
        warnings=tuple(warnings + b.warnings),
    )


def ingress_warnings(items: Iterable[Any], services: ServicesPlan, controller: str = CONTROLLER) -> tuple[str, ...]:
    """Plan-level warnings: ignored Ingresses, backends naming missing Services or ports, overlaps..."""
    return controller_config(items, services, controller).warnings
