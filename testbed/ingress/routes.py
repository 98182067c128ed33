"""Where a request goes: the nginx semantics of the controller's model, as an oracle (pure).

Experiments use it to expect the status and the answering pods of an HTTP probe
(experiment/expand.py); the unit tests check it against the rendered nginx.conf.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from .model import DEFAULT_SERVER, REDIRECT_CODE, IngressConfig, Server


@dataclass(frozen=True)
class Route:
    """Where nginx sends one request: the server and location chosen, and what happens."""

    server: str  # the server's host ("_" = default server)
    location: str  # "= /coffee", "/coffee/", "/"
    status: int = 0  # 0 = proxied to `upstream`; else 404, 503, 301 or 308
    upstream: str = ""  # also for a 503: the upstream that has no ready endpoint
    backend: str = ""  # "ns/service:port" of the upstream
    endpoints: tuple[str, ...] = ()
    redirect: str = ""  # the Location header of a 301/308
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
    server = (
        next((s for s in servers if s.host == name), None)
        or next((s for s in servers if s.host.startswith("*.") and _host_matches(s, name)), None)
        or config.server(DEFAULT_SERVER)
    )
    path = normalize_uri(uri)
    exact = {loc.path: loc for loc in server.locations if loc.modifier == "="}
    prefix = {loc.path: loc for loc in server.locations if loc.modifier == ""}
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
