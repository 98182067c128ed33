"""The controller's nginx.conf (ingress/nginx.py): golden texts, parameters, and routing read back.

Golden nginx.conf files live in golden/ingress/ (UPDATE_GOLDEN=1 regenerates them, see _golden.py):
every change there is a change in what the controller serves. A small nginx location matcher
reads the rendered text and must agree with `route` (ingress/routes.py) on every request of a
grid; `nginx -t` checks the goldens when Debian's nginx and openssl are installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from testbed.ingress import (
    controller_config,
    normalize_host,
    normalize_uri,
    openssl_argv,
    render_config,
    render_nginx_conf,
    route,
    server_name,
)

from ._golden import check_golden
from ._ingress import GOLDEN, PATHS, RUN

# -- the rendered configuration -------------------------------------------------------------------


def test_golden_nginx_conf_of_the_demo(ingress_demo):
    manifests, plan = ingress_demo
    check_golden("ingress/ingress-demo.conf", render_nginx_conf(manifests.ingresses, plan.services, **PATHS))


def test_golden_nginx_conf_of_every_feature(ingress_features):
    manifests, plan = ingress_features
    check_golden(
        "ingress/features.conf",
        render_nginx_conf(manifests.ingresses, plan.services, http_port=8080, https_port=8443, **PATHS),
    )


def test_rendering_is_deterministic_and_follows_the_parameters(ingress_demo):
    manifests, plan = ingress_demo
    a = render_nginx_conf(manifests.ingresses, plan.services, **PATHS)
    assert a == render_nginx_conf(manifests.ingresses, plan.services, **PATHS)
    b = render_nginx_conf(
        manifests.ingresses,
        plan.services,
        http_port=8080,
        https_port=8443,
        cert_path=lambda s: f"/etc/tls/{s}/tls.crt",
        key_path=lambda s: f"/etc/tls/{s}/tls.key",
        pid_path="/x/pid",
        prefix_dir="/x/",
    )
    assert "listen 8080 default_server;" in b and "listen 8443 ssl default_server;" in b
    assert "ssl_certificate /etc/tls/cafe-tls/tls.crt;" in b and "ssl_certificate_key /etc/tls/cafe-tls/tls.key;" in b
    assert "pid /x/pid;" in b and "access_log /x/access.log upstreaminfo;" in b and "error_log /x/error.log" in b
    assert not re.search(r"^\s*daemon", b, re.M) and "worker_processes 1;" in b  # `-g 'daemon off;'` stays possible
    assert "load_module" not in b and "include" not in b  # core http + ssl only, nothing from /etc/nginx


def test_wildcard_hosts_become_one_label_regexes():
    assert server_name("cafe.example.com") == "cafe.example.com"
    assert server_name("*.apps.example.com") == r"~^[\w-]+\.apps\.example\.com$"


# A matcher that reads only the rendered text: server_name, listen default_server, locations and
# what each does, with nginx's selection rules. It must agree with `route` on every request.


def _parse(text: str) -> list[dict]:
    servers: list[dict] = []
    server: dict | None = None
    loc: dict | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line == "server {":
            server = {"names": [], "default": False, "locations": {}}
            servers.append(server)
        elif server is None or line.startswith("#"):
            continue
        elif m := re.fullmatch(r"location (= )?(\"(?:[^\"\\]|\\.)*\"|\S+) \{", line):
            path = m.group(2)
            if path.startswith('"'):
                path = re.sub(r"\\(.)", r"\1", path[1:-1])
            loc = {"redirect": False, "return": 0, "proxy": ""}
            server["locations"][("=" if m.group(1) else "", path)] = loc
        elif loc is not None and line == "}":
            loc = None
        elif loc is not None:
            if line.startswith("if ($scheme = http) { return 308"):
                loc["redirect"] = True
            elif m := re.fullmatch(r"return (\d+);", line):
                loc["return"] = int(m.group(1))
            elif m := re.fullmatch(r"proxy_pass http://(\S+);", line):
                loc["proxy"] = m.group(1)
        elif m := re.fullmatch(r"server_name (\S+);", line):
            server["names"].append(m.group(1))
        elif re.fullmatch(r"listen \d+ default_server;", line):
            server["default"] = True
    return servers


def _nginx_select(servers: list[dict], host: str, uri: str, scheme: str) -> tuple[str, int, str]:
    name = normalize_host(host)
    server = (
        next((s for s in servers if name in s["names"]), None)
        or next(
            (s for s in servers for n in s["names"] if n.startswith("~") and re.search(n[1:], name, re.ASCII)), None
        )
        or next(s for s in servers if s["default"])
    )
    path = normalize_uri(uri)
    locs = server["locations"]
    key = ("=", path) if ("=", path) in locs else ("", path) if ("", path) in locs else None
    if key is None:
        if locs.get(("", path + "/"), {}).get("proxy"):
            return path + "/", 301, ""
        key = max((k for k in locs if k[0] == "" and path.startswith(k[1])), key=lambda k: len(k[1]))
    loc = locs[key]
    label = ("= " if key[0] else "") + key[1]
    if loc["redirect"] and scheme == "http":
        return label, 308, ""
    return label, loc["return"], loc["proxy"]


REQUESTS = [
    (h, u, s)
    for h in (
        "cafe.example.com",
        "shop.example.com",
        "x.apps.example.com",
        "a.b.apps.example.com",
        "broken.example.com",
        "secure.example.com",
        "other.example.com",
        "",
    )
    for u in (
        "/",
        "/coffee",
        "/coffee/",
        "/coffeebar",
        "/tea",
        "/tea/x",
        "/menu",
        "/menu/",
        "/api",
        "/api/",
        "/api/v1/health",
        "/apix",
        "/docs",
        "/docs/",
        "/static",
        "/static/x",
        "/staticx",
        "/dir",
        "/dir/",
        "/status",
        "/a:b c",
        "/missing",
        "/missing/1",
        "/nobody",
        "/target",
        "/bucket/x",
    )
    for s in ("http", "https")
]


@pytest.mark.parametrize("world", ["ingress_demo", "ingress_features"])
def test_the_rendered_text_routes_like_the_model(request, world):
    manifests, plan = request.getfixturevalue(world)
    config = controller_config(manifests.ingresses, plan.services)
    servers = _parse(render_config(config, **PATHS))
    assert sorted(n for s in servers for n in s["names"]) == sorted(server_name(s.host) for s in config.servers)
    for host, uri, scheme in REQUESTS:
        r = route(config, host, uri, scheme)
        label, status, proxy = _nginx_select(servers, host, uri, scheme)
        expected = (r.redirect if r.status == 301 else r.location, r.status, r.upstream if r.status == 0 else "")
        assert (label, status, proxy) == expected, (host, uri, scheme)


# -- nginx -t ------------------------------------------------------------------------------------


@pytest.mark.skipif(not (shutil.which("nginx") and shutil.which("openssl")), reason="nginx and openssl not installed")
@pytest.mark.parametrize("golden", ["ingress-demo.conf", "features.conf"])
def test_nginx_accepts_the_golden_configuration(tmp_path, golden):
    text = (GOLDEN / golden).read_text(encoding="utf-8").replace(RUN, str(tmp_path))
    (tmp_path / "certs").mkdir()
    for secret in set(re.findall(r"/certs/([^/;]+)\.crt;", text)):
        argv = openssl_argv(
            ["example.test"],
            str(tmp_path / "certs" / f"{secret}.crt"),
            str(tmp_path / "certs" / f"{secret}.key"),
            days=1,
        )
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text, encoding="utf-8")
    done = subprocess.run(
        ["nginx", "-t", "-q", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
