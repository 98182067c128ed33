"""Where a request goes (ingress/routes.py): the oracle on the demo and every-feature worlds."""

from __future__ import annotations

import pytest

from testbed.ingress import controller_config, normalize_host, normalize_uri, route

# -- routing: the oracle, and nginx's matching over the rendered text ---------------------------------


@pytest.mark.parametrize(
    "host,uri,scheme,expect",
    [
        # Prefix /coffee: path elements, not characters.
        ("cafe.example.com", "/coffee", "http", ("= /coffee", 0, "default/coffee:80")),
        ("cafe.example.com", "/coffee/", "http", ("/coffee/", 0, "default/coffee:80")),
        ("cafe.example.com", "/coffee/latte?size=xl", "http", ("/coffee/", 0, "default/coffee:80")),
        ("cafe.example.com", "/coffeebar", "http", ("/", 0, "default/default-http-backend:80")),
        # Exact /menu: only itself.
        ("cafe.example.com", "/menu", "http", ("= /menu", 0, "default/tea:http")),
        ("cafe.example.com", "/menu/", "http", ("/", 0, "default/default-http-backend:80")),
        ("cafe.example.com", "/menu/today", "http", ("/", 0, "default/default-http-backend:80")),
        # Host: case, port and trailing dot do not matter; other hosts reach the default server.
        ("CAFE.Example.com:30080", "/tea/green", "https", ("/tea/", 0, "default/tea:http")),
        ("cafe.example.com.", "/tea", "http", ("= /tea", 0, "default/tea:http")),
        ("203.0.113.7", "/coffee", "http", ("/", 0, "default/default-http-backend:80")),
        ("", "/tea", "http", ("/", 0, "default/default-http-backend:80")),
        # nginx normalises the URI before matching.
        ("cafe.example.com", "//coffee//x", "http", ("/coffee/", 0, "default/coffee:80")),
        ("cafe.example.com", "/tea/../coffee", "http", ("= /coffee", 0, "default/coffee:80")),
        ("cafe.example.com", "/cof%66ee", "http", ("= /coffee", 0, "default/coffee:80")),
    ],
)
def test_demo_routing(ingress_demo, host, uri, scheme, expect):
    manifests, plan = ingress_demo
    config = controller_config(manifests.ingresses, plan.services)
    r = route(config, host, uri, scheme)
    assert (r.location, r.status, r.backend) == expect
    assert r.endpoints == config.upstream(r.upstream).endpoints


@pytest.mark.parametrize(
    "host,uri,scheme,expect",
    [
        # Longest match wins; Exact beats the Prefix that contains it.
        ("shop.example.com", "/api/v1/health", "http", ("= /api/v1/health", 0, "shop/web:9100")),
        ("shop.example.com", "/api/v1/healthz", "http", ("/api/", 0, "shop/api:8080")),
        ("shop.example.com", "/api", "http", ("= /api", 0, "shop/api:8080")),  # shop wins over late
        ("shop.example.com", "/apis", "http", ("/", 0, "shop/web:http")),  # Prefix / replaced the default
        # Prefix /docs/ ignores its trailing slash, but late's Exact /docs beats its implicit one (and redirects).
        ("shop.example.com", "/docs/x", "http", ("/docs/", 0, "shop/api:8080")),
        ("shop.example.com", "/docs", "https", ("= /docs", 0, "shop/web:80")),
        ("shop.example.com", "/docs", "http", ("= /docs", 308, "")),
        # ImplementationSpecific is nginx's own prefix: characters, not elements.
        ("shop.example.com", "/static", "http", ("/static", 0, "shop/web:9100")),
        ("shop.example.com", "/staticky/x.css", "http", ("/static", 0, "shop/web:9100")),
        ("shop.example.com", "/dir", "http", ("/dir/", 301, "")),  # nginx adds the slash
        ("shop.example.com", "/dir/x", "http", ("/dir/", 0, "shop/api:8080")),
        ("shop.example.com", "/a:b%20c/d", "http", ("/a:b c", 0, "shop/api:8080")),
        # A wildcard host is one label deep.
        ("x.apps.example.com", "/anything", "http", ("/", 0, "shop/api:api")),
        ("x.y.apps.example.com", "/anything", "http", ("/", 0, "shop/api:8080")),  # default server
        ("apps.example.com", "/status", "http", ("= /status", 0, "shop/web:9100")),  # hostless rule
        ("shop.example.com", "/status", "http", ("/", 0, "shop/web:http")),  # not on named hosts
        # TLS host with ssl-redirect (default): plain HTTP gets 308; broken backends answer 503.
        ("broken.example.com", "/missing", "http", ("= /missing", 308, "")),
        ("broken.example.com", "/missing/x", "https", ("/missing/", 503, "shop/nosuch:80")),
        ("broken.example.com", "/noport", "https", ("= /noport", 503, "shop/web:81")),
        ("broken.example.com", "/udp", "https", ("= /udp", 503, "shop/api:dns")),
        ("broken.example.com", "/ext", "https", ("= /ext", 503, "shop/ext:80")),
        ("broken.example.com", "/nobody", "https", ("= /nobody", 503, "shop/nobody:80")),
        ("broken.example.com", "/bucket", "https", ("/", 0, "shop/api:8080")),  # resource: default backend
        ("broken.example.com", "/target/1", "https", ("/target/", 0, "shop/api:9000")),
        ("secure.example.com", "/", "http", ("/", 308, "")),  # force-ssl-redirect
        ("secure.example.com", "/", "https", ("/", 0, "shop/web:80")),
        ("theirs.example.com", "/", "http", ("/", 0, "shop/api:8080")),  # ignored Ingress
    ],
)
def test_features_routing(ingress_features, host, uri, scheme, expect):
    manifests, plan = ingress_features
    config = controller_config(manifests.ingresses, plan.services)
    r = route(config, host, uri, scheme)
    assert (r.location, r.status, r.backend if r.status in (0, 503) else "") == expect


def test_redirects_say_where(ingress_features):
    manifests, plan = ingress_features
    config = controller_config(manifests.ingresses, plan.services)
    assert route(config, "shop.example.com", "/dir?q=1").redirect == "/dir/?q=1"
    assert route(config, "Secure.example.com:80", "/a?b=c").redirect == "https://secure.example.com/a?b=c"


def test_normalization_helpers():
    assert normalize_host("Cafe.Example.COM:8080") == "cafe.example.com"
    assert normalize_host("cafe.example.com.") == "cafe.example.com"
    assert normalize_uri("/a/./b/../c//d/?x=/y") == "/a/c/d/"
    assert normalize_uri("/a/..") == "/" and normalize_uri("") == "/" and normalize_uri("/%7Euser") == "/~user"
