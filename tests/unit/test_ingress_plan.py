"""The ingress controller's configuration (plan/ingress.py): classes, warnings, nginx.conf, routing.

Golden nginx.conf files live in golden/ingress/ (UPDATE_GOLDEN=1 regenerates them, see _golden.py).
Review the diff before accepting it: every change is a change in what the controller serves.
Routing is checked twice: `route` (the model's oracle) and a small nginx location matcher that
reads the rendered text, which must agree on every request of a grid; `nginx -t` checks the
goldens when Debian's nginx and openssl are installed.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import shutil
import subprocess
import textwrap

import pytest

from testbed.plan.build import plan_cluster
from testbed.plan.ingress import (CLASS_NAME, CONTROLLER, DEFAULT_CERTIFICATE, DEFAULT_SERVER,
                                  certificates_needed, controller_config, ingress_classes, ingress_warnings,
                                  normalize_host, normalize_uri, openssl_argv, render_config, render_nginx_conf,
                                  route, select_ingresses, server_name)
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from ._golden import GOLDEN as GOLDEN_ROOT
from ._golden import check_golden

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
GOLDEN = GOLDEN_ROOT / "ingress"
DEMO = REPO / "manifests" / "ingress-demo.yaml"
TOPOLOGY = REPO / "topologies" / "three-nodes.yaml"
RUN = "/run/testbed-ingress"         # the paths written into the goldens; nginx -t swaps in a tmp dir
PATHS = dict(cert_path=RUN + "/certs/{secret}.crt", key_path=RUN + "/certs/{secret}.key",
             pid_path=RUN + "/nginx.pid", prefix_dir=RUN)

# Every feature at once: hosts, a wildcard, a hostless rule, the three path types, TLS with and
# without secret, redirects, overlaps, each kind of broken backend, ignored classes.
FEATURES = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: other}
spec: {controller: example.com/other-controller}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: internal
  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}
spec: {controller: k8s.io/ingress-nginx}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, ports: [{name: http, containerPort: 8080}, {name: metrics, containerPort: 9100}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, ports: [{name: api, containerPort: 9000}, {name: dns, containerPort: 53, protocol: UDP}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}, {name: metrics, port: 9100, targetPort: metrics}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  selector: {app: api}
  ports: [{name: api, port: 8080, targetPort: 9000}, {name: dns, port: 53, protocol: UDP, targetPort: dns}]
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: shop}
spec: {type: ExternalName, externalName: db.example.com}
---
apiVersion: v1
kind: Service
metadata: {name: nobody, namespace: shop}
spec:
  selector: {app: nobody}
  ports: [{port: 80}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: shop
  annotations: {nginx.ingress.kubernetes.io/ssl-redirect: "false"}
spec:
  ingressClassName: nginx
  defaultBackend: {service: {name: web, port: {number: 80}}}
  tls:
    - {hosts: [shop.example.com], secretName: shop-tls}
    - {hosts: ["*.apps.example.com"], secretName: apps-tls}
  rules:
    - host: shop.example.com
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
          - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 8080}}}}
          - {path: /api/v1/health, pathType: Exact, backend: {service: {name: web, port: {number: 9100}}}}
          - {path: /static, pathType: ImplementationSpecific, backend: {service: {name: web, port: {number: 9100}}}}
          - {path: /docs/, pathType: Prefix, backend: {service: {name: api, port: {number: 8080}}}}
          - {path: /dir/, pathType: ImplementationSpecific, backend: {service: {name: api, port: {number: 8080}}}}
          - {path: "/a:b c", pathType: ImplementationSpecific, backend: {service: {name: api, port: {number: 8080}}}}
    - host: "*.apps.example.com"
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: api, port: {name: api}}}}
    - http:
        paths:
          - {path: /status, pathType: Exact, backend: {service: {name: web, port: {number: 9100}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: broken, namespace: shop}
spec:
  defaultBackend: {service: {name: api, port: {number: 8080}}}
  tls: [{hosts: [broken.example.com, nowhere.example.com]}]
  rules:
    - host: broken.example.com
      http:
        paths:
          - {path: /missing, pathType: Prefix, backend: {service: {name: nosuch, port: {number: 80}}}}
          - {path: /noport, pathType: Prefix, backend: {service: {name: web, port: {number: 81}}}}
          - {path: /udp, pathType: Prefix, backend: {service: {name: api, port: {name: dns}}}}
          - {path: /ext, pathType: Prefix, backend: {service: {name: ext, port: {number: 80}}}}
          - {path: /nobody, pathType: Prefix, backend: {service: {name: nobody, port: {number: 80}}}}
          - {path: /bucket, pathType: Prefix, backend: {resource: {kind: Bucket, name: b}}}
          - {path: /target, pathType: Prefix, backend: {service: {name: api, port: {number: 9000}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: late
  namespace: shop
  annotations: {nginx.ingress.kubernetes.io/force-ssl-redirect: "true"}
spec:
  ingressClassName: nginx
  rules:
    - host: shop.example.com
      http:
        paths:
          - {path: /api, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
          - {path: /docs, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
    - host: secure.example.com
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: theirs, namespace: shop}
spec:
  ingressClassName: other
  rules: [{host: theirs.example.com, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: lost, namespace: shop}
spec:
  ingressClassName: traefik
  defaultBackend: {service: {name: web, port: {number: 80}}}
"""


def _world(path: str | pathlib.Path):
    manifests = load_manifests([str(path)])
    return manifests, plan_cluster(load_topology(str(TOPOLOGY)), manifests, seed=1)


@pytest.fixture(scope="module")
def demo():
    return _world(DEMO)


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    path = tmp_path_factory.mktemp("ingress") / "features.yaml"
    path.write_text(FEATURES, encoding="utf-8")
    return _world(path)


def _pods(plan, prefix: str) -> list[str]:
    return sorted(p.ip for p in plan.pods if p.name.startswith(prefix))



# -- classes ---------------------------------------------------------------------------------------

def test_the_controller_serves_its_classes_only(features):
    manifests, _ = features
    ours, warnings = select_ingresses(manifests.ingresses)
    assert [i.key for i in ours] == ["shop/shop", "shop/broken", "shop/late"]   # broken: the default class
    assert warnings == (
        "Ingress shop/theirs: IngressClass 'other' belongs to controller 'example.com/other-controller', not the "
        "testbed's 'k8s.io/ingress-nginx': ignored by our controller",
        "Ingress shop/lost: IngressClass 'traefik' (from spec.ingressClassName) does not exist: ignored")
    # The builtin class `nginx` comes with the controller; the manifests' classes follow it.
    assert [(c.name, c.controller) for c in ingress_classes(manifests.ingresses)] == [
        (CLASS_NAME, CONTROLLER), ("other", "example.com/other-controller"), ("internal", CONTROLLER)]


def test_class_resolution_like_the_api_server_and_ingress_nginx(manifests):
    def ingress(name: str, extra: str = "", annotations: str = "{}") -> str:
        return (f"apiVersion: networking.k8s.io/v1\nkind: Ingress\n"
                f"metadata: {{name: {name}, annotations: {annotations}}}\n"
                f"spec: {{defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}{', ' + extra if extra else ''}}}\n")

    m = manifests(ingress("no-class"), ingress("annotated", annotations="{kubernetes.io/ingress.class: nginx}"),
                  ingress("named", "ingressClassName: nginx"))
    ours, warnings = select_ingresses(m.ingresses)
    assert [i.name for i in ours] == ["annotated", "named"]
    assert warnings == ("Ingress default/no-class: no ingressClassName and no default IngressClass: ignored by the "
                        "testbed's controller (set ingressClassName: nginx)",)
    # The manifests' own `nginx` replaces the builtin one: here it is another controller's.
    theirs = """
        apiVersion: networking.k8s.io/v1
        kind: IngressClass
        metadata: {name: nginx}
        spec: {controller: example.com/not-ours}
    """
    m = manifests(theirs, ingress("named", "ingressClassName: nginx"))
    assert select_ingresses(m.ingresses)[0] == ()
    assert [c.controller for c in ingress_classes(m.ingresses)] == ["example.com/not-ours"]
    # Two default classes: the admission plugin refuses a class-less Ingress.
    defaults = "".join(f"""
        ---
        apiVersion: networking.k8s.io/v1
        kind: IngressClass
        metadata: {{name: d{i}, annotations: {{ingressclass.kubernetes.io/is-default-class: "true"}}}}
        spec: {{controller: k8s.io/ingress-nginx}}
    """ for i in (1, 2))
    m = manifests(textwrap.dedent(defaults), ingress("no-class"))
    ours, warnings = select_ingresses(m.ingresses)
    assert ours == () and "2 IngressClasses are marked default (d1, d2)" in warnings[0]


# -- plan-level warnings ---------------------------------------------------------------------------

def test_warnings_name_each_ingress_field_and_what_happens(features):
    manifests, plan = features
    assert ingress_warnings(manifests.ingresses, plan.services) == (
        "Ingress shop/theirs: IngressClass 'other' belongs to controller 'example.com/other-controller', not the "
        "testbed's 'k8s.io/ingress-nginx': ignored by our controller",
        "Ingress shop/lost: IngressClass 'traefik' (from spec.ingressClassName) does not exist: ignored",
        "Ingress shop/broken: spec.tls[0]: host nowhere.example.com has no rule in this Ingress: ingress-nginx does "
        "not use this certificate for it",
        "Ingresses shop/shop, shop/broken each declare a defaultBackend: requests for unknown hosts go to the last "
        "one's (shop/broken), as in ingress-nginx",
        "Ingress shop/broken: spec.rules[0].http.paths[5].backend: resource backends (Bucket/b) are not served by "
        "ingress-nginx: the path falls to the host's default backend",
        "Ingress shop/late: spec.rules[0].http.paths[0]: location /api/ of shop.example.com is already defined by "
        "Ingress shop/shop spec.rules[0].http.paths[1], which wins",
        "Ingress shop/broken: spec.rules[0].http.paths[0].backend: Service shop/nosuch does not exist: answers 503",
        "Ingress shop/broken: spec.rules[0].http.paths[1].backend: Service shop/web has no port 81 (it has: "
        "http 80/TCP, metrics 9100/TCP): answers 503",
        "Ingress shop/broken: spec.rules[0].http.paths[2].backend: Service shop/api port dns is UDP; the controller "
        "proxies HTTP over TCP only: answers 503",
        "Ingress shop/broken: spec.rules[0].http.paths[3].backend: Service shop/ext is of type ExternalName, which "
        "the testbed's controller does not proxy to: answers 503",
        "Ingress shop/broken: spec.rules[0].http.paths[4].backend: Service shop/nobody port 80 has no ready "
        "endpoint: answers 503 until one is ready",
        "Ingress shop/broken: spec.rules[0].http.paths[6].backend: port 9000 is Service shop/api's targetPort, not "
        "one of its ports; ingress-nginx accepts it and uses port 8080")


def test_a_resource_default_backend_is_warned_once_and_answers_404(manifests, demo):
    m = manifests("""
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: bucket}
        spec:
          ingressClassName: nginx
          defaultBackend: {resource: {apiGroup: k8s.example.com, kind: Bucket, name: static}}
          rules: [{host: a.example.com}, {host: b.example.com}]
    """)
    config = controller_config(m.ingresses, demo[1].services)
    assert config.warnings == ("Ingress default/bucket: spec.defaultBackend: resource backends "
                               "(k8s.example.com/Bucket/static) are not served by ingress-nginx: the controller's "
                               "default backend (404) answers",)
    assert {(h, route(config, h, "/x").status) for h in ("a.example.com", "b.example.com", "c")} == {
        ("a.example.com", 404), ("b.example.com", 404), ("c", 404)}


def test_the_demo_plans_without_warnings(demo):
    manifests, plan = demo
    assert ingress_warnings(manifests.ingresses, plan.services) == ()


# -- the model ---------------------------------------------------------------------------------

def test_upstreams_list_the_ready_endpoints_not_the_cluster_ip(demo):
    manifests, plan = demo
    config = controller_config(manifests.ingresses, plan.services)
    assert [u.name for u in config.upstreams] == ["default-coffee-80", "default-default-http-backend-80",
                                                  "default-tea-http"]
    coffee = config.upstream("default-coffee-80")
    assert coffee.endpoints == tuple(f"{ip}:8080" for ip in _pods(plan, "coffee-"))
    assert len(coffee.endpoints) == 2
    assert plan.services.service("default", "coffee").cluster_ip not in " ".join(coffee.endpoints)
    # A pod that is not ready leaves the upstream; with none left, the locations answer 503.
    services = plan.services
    slices = tuple(dataclasses.replace(sl, endpoints=tuple(dataclasses.replace(e, ready=False) for e in sl.endpoints))
                   if sl.service == "coffee" else sl for sl in services.slices)
    config = controller_config(manifests.ingresses, dataclasses.replace(services, slices=slices))
    assert config.upstream("default-coffee-80").endpoints == ()
    r = route(config, "cafe.example.com", "/coffee/latte")
    assert (r.status, r.upstream, r.backend) == (503, "default-coffee-80", "default/coffee:80")
    text = render_config(config, **PATHS)
    assert "upstream default-coffee-80" not in text and "return 503;" in text


def test_servers_and_certificates(features):
    manifests, plan = features
    config = controller_config(manifests.ingresses, plan.services)
    assert [(s.host, s.certificate, s.tls, s.ingress) for s in config.servers] == [
        (DEFAULT_SERVER, DEFAULT_CERTIFICATE, False, ""),
        ("*.apps.example.com", "apps-tls", True, "shop/shop"),
        ("broken.example.com", DEFAULT_CERTIFICATE, True, "shop/broken"),   # tls entry without secretName
        ("secure.example.com", DEFAULT_CERTIFICATE, False, "shop/late"),
        ("shop.example.com", "shop-tls", True, "shop/shop")]
    assert certificates_needed(manifests.ingresses) == {
        "apps-tls": ["*.apps.example.com"], DEFAULT_CERTIFICATE: ["ingress.local"], "shop-tls": ["shop.example.com"]}
    assert certificates_needed(load_manifests([str(DEMO)]).ingresses) == {
        "cafe-tls": ["cafe.example.com"], DEFAULT_CERTIFICATE: ["ingress.local"]}


def test_a_tls_entry_without_hosts_covers_the_ingress_rule_hosts(manifests):
    m = manifests("""
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: web}
        spec:
          ingressClassName: nginx
          tls: [{secretName: web-tls}]
          rules: [{host: a.example.com}, {host: b.example.com}, {}]
    """)
    assert certificates_needed(m.ingresses) == {DEFAULT_CERTIFICATE: ["ingress.local"],
                                                "web-tls": ["a.example.com", "b.example.com"]}


def test_openssl_argv_makes_a_self_signed_certificate_for_the_hosts():
    argv = openssl_argv(["cafe.example.com", "*.cafe.example.com"], "/c/x.crt", "/c/x.key")
    assert argv[:4] == ["openssl", "req", "-x509", "-newkey"]
    assert argv[argv.index("-subj") + 1] == "/CN=cafe.example.com"
    assert argv[argv.index("-addext") + 1] == "subjectAltName=DNS:cafe.example.com,DNS:*.cafe.example.com"
    assert (argv[argv.index("-out") + 1], argv[argv.index("-keyout") + 1]) == ("/c/x.crt", "/c/x.key")


# -- the rendered configuration -------------------------------------------------------------------

def test_golden_nginx_conf_of_the_demo(demo):
    manifests, plan = demo
    check_golden("ingress/ingress-demo.conf", render_nginx_conf(manifests.ingresses, plan.services, **PATHS))


def test_golden_nginx_conf_of_every_feature(features):
    manifests, plan = features
    check_golden("ingress/features.conf", render_nginx_conf(manifests.ingresses, plan.services, http_port=8080,
                                                    https_port=8443, **PATHS))


def test_rendering_is_deterministic_and_follows_the_parameters(demo):
    manifests, plan = demo
    a = render_nginx_conf(manifests.ingresses, plan.services, **PATHS)
    assert a == render_nginx_conf(manifests.ingresses, plan.services, **PATHS)
    b = render_nginx_conf(manifests.ingresses, plan.services, http_port=8080, https_port=8443,
                          cert_path=lambda s: f"/etc/tls/{s}/tls.crt", key_path=lambda s: f"/etc/tls/{s}/tls.key",
                          pid_path="/x/pid", prefix_dir="/x/")
    assert "listen 8080 default_server;" in b and "listen 8443 ssl default_server;" in b
    assert "ssl_certificate /etc/tls/cafe-tls/tls.crt;" in b and "ssl_certificate_key /etc/tls/cafe-tls/tls.key;" in b
    assert "pid /x/pid;" in b and "access_log /x/access.log upstreaminfo;" in b and "error_log /x/error.log" in b
    assert not re.search(r"^\s*daemon", b, re.M) and "worker_processes 1;" in b   # `-g 'daemon off;'` stays possible
    assert "load_module" not in b and "include" not in b      # core http + ssl only, nothing from /etc/nginx


def test_wildcard_hosts_become_one_label_regexes():
    assert server_name("cafe.example.com") == "cafe.example.com"
    assert server_name("*.apps.example.com") == r"~^[\w-]+\.apps\.example\.com$"


# -- routing: the oracle, and nginx's matching over the rendered text ---------------------------------

@pytest.mark.parametrize("host,uri,scheme,expect", [
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
])
def test_demo_routing(demo, host, uri, scheme, expect):
    manifests, plan = demo
    config = controller_config(manifests.ingresses, plan.services)
    r = route(config, host, uri, scheme)
    assert (r.location, r.status, r.backend) == expect
    assert r.endpoints == config.upstream(r.upstream).endpoints


@pytest.mark.parametrize("host,uri,scheme,expect", [
    # Longest match wins; Exact beats the Prefix that contains it.
    ("shop.example.com", "/api/v1/health", "http", ("= /api/v1/health", 0, "shop/web:9100")),
    ("shop.example.com", "/api/v1/healthz", "http", ("/api/", 0, "shop/api:8080")),
    ("shop.example.com", "/api", "http", ("= /api", 0, "shop/api:8080")),          # shop wins over late
    ("shop.example.com", "/apis", "http", ("/", 0, "shop/web:http")),              # Prefix / replaced the default
    # Prefix /docs/ ignores its trailing slash, but late's Exact /docs beats its implicit one (and redirects).
    ("shop.example.com", "/docs/x", "http", ("/docs/", 0, "shop/api:8080")),
    ("shop.example.com", "/docs", "https", ("= /docs", 0, "shop/web:80")),
    ("shop.example.com", "/docs", "http", ("= /docs", 308, "")),
    # ImplementationSpecific is nginx's own prefix: characters, not elements.
    ("shop.example.com", "/static", "http", ("/static", 0, "shop/web:9100")),
    ("shop.example.com", "/staticky/x.css", "http", ("/static", 0, "shop/web:9100")),
    ("shop.example.com", "/dir", "http", ("/dir/", 301, "")),                      # nginx adds the slash
    ("shop.example.com", "/dir/x", "http", ("/dir/", 0, "shop/api:8080")),
    ("shop.example.com", "/a:b%20c/d", "http", ("/a:b c", 0, "shop/api:8080")),
    # A wildcard host is one label deep.
    ("x.apps.example.com", "/anything", "http", ("/", 0, "shop/api:api")),
    ("x.y.apps.example.com", "/anything", "http", ("/", 0, "shop/api:8080")),    # default server
    ("apps.example.com", "/status", "http", ("= /status", 0, "shop/web:9100")),   # hostless rule
    ("shop.example.com", "/status", "http", ("/", 0, "shop/web:http")),          # not on named hosts
    # TLS host with ssl-redirect (default): plain HTTP gets 308; broken backends answer 503.
    ("broken.example.com", "/missing", "http", ("= /missing", 308, "")),
    ("broken.example.com", "/missing/x", "https", ("/missing/", 503, "shop/nosuch:80")),
    ("broken.example.com", "/noport", "https", ("= /noport", 503, "shop/web:81")),
    ("broken.example.com", "/udp", "https", ("= /udp", 503, "shop/api:dns")),
    ("broken.example.com", "/ext", "https", ("= /ext", 503, "shop/ext:80")),
    ("broken.example.com", "/nobody", "https", ("= /nobody", 503, "shop/nobody:80")),
    ("broken.example.com", "/bucket", "https", ("/", 0, "shop/api:8080")),        # resource: default backend
    ("broken.example.com", "/target/1", "https", ("/target/", 0, "shop/api:9000")),
    ("secure.example.com", "/", "http", ("/", 308, "")),                           # force-ssl-redirect
    ("secure.example.com", "/", "https", ("/", 0, "shop/web:80")),
    ("theirs.example.com", "/", "http", ("/", 0, "shop/api:8080")),               # ignored Ingress
])
def test_features_routing(features, host, uri, scheme, expect):
    manifests, plan = features
    config = controller_config(manifests.ingresses, plan.services)
    r = route(config, host, uri, scheme)
    assert (r.location, r.status, r.backend if r.status in (0, 503) else "") == expect


def test_redirects_say_where(features):
    manifests, plan = features
    config = controller_config(manifests.ingresses, plan.services)
    assert route(config, "shop.example.com", "/dir?q=1").redirect == "/dir/?q=1"
    assert route(config, "Secure.example.com:80", "/a?b=c").redirect == "https://secure.example.com/a?b=c"


def test_normalization_helpers():
    assert normalize_host("Cafe.Example.COM:8080") == "cafe.example.com"
    assert normalize_host("cafe.example.com.") == "cafe.example.com"
    assert normalize_uri("/a/./b/../c//d/?x=/y") == "/a/c/d/"
    assert normalize_uri("/a/..") == "/" and normalize_uri("") == "/" and normalize_uri("/%7Euser") == "/~user"


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
    server = (next((s for s in servers if name in s["names"]), None)
              or next((s for s in servers for n in s["names"]
                       if n.startswith("~") and re.search(n[1:], name, re.ASCII)), None)
              or next(s for s in servers if s["default"]))
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


REQUESTS = [(h, u, s) for h in ("cafe.example.com", "shop.example.com", "x.apps.example.com", "a.b.apps.example.com",
                                "broken.example.com", "secure.example.com", "other.example.com", "")
            for u in ("/", "/coffee", "/coffee/", "/coffeebar", "/tea", "/tea/x", "/menu", "/menu/", "/api", "/api/",
                      "/api/v1/health", "/apix", "/docs", "/docs/", "/static", "/static/x", "/staticx", "/dir",
                      "/dir/", "/status", "/a:b c", "/missing", "/missing/1", "/nobody", "/target", "/bucket/x")
            for s in ("http", "https")]


@pytest.mark.parametrize("world", ["demo", "features"])
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
        argv = openssl_argv(["example.test"], str(tmp_path / "certs" / f"{secret}.crt"),
                            str(tmp_path / "certs" / f"{secret}.key"), days=1)
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text, encoding="utf-8")
    done = subprocess.run(["nginx", "-t", "-q", "-c", str(conf), "-p", str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
