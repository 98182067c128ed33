"""The URL an HTTP probe requests and the Host header it sends (issue 15; pure, experiment loading).

A probe group's `http:` may leave out `host`: the request then goes to the address (or DNS
name) the probe is sent to, with the Host header a client derives from the URL (RFC 3986's
authority, as curl and Go's net/http write it): an IPv6 literal in brackets, the port left out
when it is the scheme's default. So `http://[fd00:10:96::1c2b]:8080/` sends
`Host: [fd00:10:96::1c2b]:8080`, and a name resolved to AAAA keeps its name.
"""

from __future__ import annotations

DEFAULT_PORTS = {"http": 80, "https": 443}


def authority(host: str, port: int, scheme: str = "http") -> str:
    """host[:port] as a URL writes it: an IPv6 literal bracketed, the scheme's default port omitted."""
    name = f"[{host}]" if ":" in host else host
    return name if DEFAULT_PORTS.get(scheme) == port else f"{name}:{port}"


def url(scheme: str, host: str, port: int, path: str) -> str:
    """The URL of a request to `host` (address or name) on `port`."""
    return f"{scheme}://{authority(host, port, scheme)}{path or '/'}"


def host_header(http_host: str, target: str, port: int, scheme: str) -> str:
    """The Host header: the group's `host`, else the URL's authority (`target`: the address or
    DNS name the request is sent to)."""
    return http_host or authority(target, port, scheme)
