"""The ingress controller's model: servers, locations, upstreams, certificates (pure data).

controller.py builds it from the Ingresses (controller_config), nginx.py renders it as
nginx.conf, routes.py answers where a request goes by evaluating it. The constants are
ingress-nginx's names and defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

CONTROLLER = "k8s.io/ingress-nginx"
CLASS_NAME = "nginx"  # the IngressClass installed with the controller
DEFAULT_SERVER = "_"
DEFAULT_UPSTREAM = "upstream-default-backend"
DEFAULT_CERTIFICATE = "default-fake-certificate"  # a key of certificates_needed(); not a Secret
DEFAULT_CERTIFICATE_HOSTS = ("ingress.local",)  # as ingress-nginx's fake certificate
SSL_REDIRECT = "nginx.ingress.kubernetes.io/ssl-redirect"
FORCE_SSL_REDIRECT = "nginx.ingress.kubernetes.io/force-ssl-redirect"
REDIRECT_CODE = 308  # ingress-nginx's http-redirect-code


@dataclass(frozen=True)
class Upstream:
    name: str  # ingress-nginx's upstream name: namespace-service-port
    namespace: str
    service: str
    port: str  # the backend's port as written: "80" or "http"
    endpoints: tuple[str, ...] = ()  # ready "podIP:targetPort", as ServicesPlan.endpoints sorts them

    @property
    def backend(self) -> str:
        return f"{self.namespace}/{self.service}:{self.port}"


@dataclass(frozen=True)
class Location:
    modifier: str  # "=" exact, "" prefix
    path: str  # as nginx compares it (decoded URI)
    upstream: str = ""  # the Upstream's name; "" = the controller's default backend
    status: int = 0  # returned instead of proxying: 404 (the controller's default
    # backend), 503 (the upstream has no ready endpoint); 0 = proxied
    ingress: str = ""  # "ns/name" of the Ingress that defined it, "" = the controller
    source: str = ""  # "spec.rules[0].http.paths[1]", "spec.defaultBackend", ""
    path_type: str = ""  # Exact | Prefix | ImplementationSpecific | "" (a server's root)
    implicit: bool = False  # the `= /p` that a Prefix `/p` adds, or a server's default root
    ssl_redirect: bool = False  # plain-HTTP requests get a 308 to HTTPS

    @property
    def key(self) -> tuple[str, str]:
        return (self.modifier, self.path)

    @property
    def label(self) -> str:
        return f"= {self.path}" if self.modifier == "=" else self.path


@dataclass(frozen=True)
class Server:
    host: str  # "_" for the default server
    locations: tuple[Location, ...]
    certificate: str = DEFAULT_CERTIFICATE  # a key of `certificates`
    tls: bool = False  # the host has a certificate from an Ingress's tls section
    ingress: str = ""  # the Ingress that created the server

    @property
    def default(self) -> bool:
        return self.host == DEFAULT_SERVER


@dataclass(frozen=True)
class IngressConfig:
    ingresses: tuple[str, ...]  # "ns/name" of the Ingresses served
    servers: tuple[Server, ...]  # the default server first, then by host
    upstreams: tuple[Upstream, ...]  # by name, those some location uses (maybe empty)
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
