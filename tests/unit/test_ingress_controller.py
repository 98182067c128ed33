"""The controller's model from the Ingresses (ingress/controller.py): plan-level warnings, upstreams,
servers, certificates."""

from __future__ import annotations

import dataclasses

from testbed.ingress import (
    DEFAULT_CERTIFICATE,
    DEFAULT_SERVER,
    certificates_needed,
    controller_config,
    ingress_warnings,
    render_config,
    route,
)
from testbed.spec.workloads import load_manifests

from ._ingress import DEMO, PATHS, pod_ips

# -- plan-level warnings ---------------------------------------------------------------------------


def test_warnings_name_each_ingress_field_and_what_happens(ingress_features):
    manifests, plan = ingress_features
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
        "one of its ports; ingress-nginx accepts it and uses port 8080",
    )


def test_a_resource_default_backend_is_warned_once_and_answers_404(manifests, ingress_demo):
    m = manifests("""
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: bucket}
        spec:
          ingressClassName: nginx
          defaultBackend: {resource: {apiGroup: k8s.example.com, kind: Bucket, name: static}}
          rules: [{host: a.example.com}, {host: b.example.com}]
    """)
    config = controller_config(m.ingresses, ingress_demo[1].services)
    assert config.warnings == (
        "Ingress default/bucket: spec.defaultBackend: resource backends "
        "(k8s.example.com/Bucket/static) are not served by ingress-nginx: the controller's "
        "default backend (404) answers",
    )
    assert {(h, route(config, h, "/x").status) for h in ("a.example.com", "b.example.com", "c")} == {
        ("a.example.com", 404),
        ("b.example.com", 404),
        ("c", 404),
    }


def test_the_demo_plans_without_warnings(ingress_demo):
    manifests, plan = ingress_demo
    assert ingress_warnings(manifests.ingresses, plan.services) == ()


# -- the model ---------------------------------------------------------------------------------


def test_upstreams_list_the_ready_endpoints_not_the_cluster_ip(ingress_demo):
    manifests, plan = ingress_demo
    config = controller_config(manifests.ingresses, plan.services)
    assert [u.name for u in config.upstreams] == [
        "default-coffee-80",
        "default-default-http-backend-80",
        "default-tea-http",
    ]
    coffee = config.upstream("default-coffee-80")
    assert coffee.endpoints == tuple(f"{ip}:8080" for ip in pod_ips(plan, "coffee-"))
    assert len(coffee.endpoints) == 2
    assert plan.services.service("default", "coffee").cluster_ip not in " ".join(coffee.endpoints)
    # A pod that is not ready leaves the upstream; with none left, the locations answer 503.
    services = plan.services
    slices = tuple(
        dataclasses.replace(sl, endpoints=tuple(dataclasses.replace(e, ready=False) for e in sl.endpoints))
        if sl.service == "coffee"
        else sl
        for sl in services.slices
    )
    config = controller_config(manifests.ingresses, dataclasses.replace(services, slices=slices))
    assert config.upstream("default-coffee-80").endpoints == ()
    r = route(config, "cafe.example.com", "/coffee/latte")
    assert (r.status, r.upstream, r.backend) == (503, "default-coffee-80", "default/coffee:80")
    text = render_config(config, **PATHS)
    assert "upstream default-coffee-80" not in text and "return 503;" in text


def test_servers_and_certificates(ingress_features):
    manifests, plan = ingress_features
    config = controller_config(manifests.ingresses, plan.services)
    assert [(s.host, s.certificate, s.tls, s.ingress) for s in config.servers] == [
        (DEFAULT_SERVER, DEFAULT_CERTIFICATE, False, ""),
        ("*.apps.example.com", "apps-tls", True, "shop/shop"),
        ("broken.example.com", DEFAULT_CERTIFICATE, True, "shop/broken"),  # tls entry without secretName
        ("secure.example.com", DEFAULT_CERTIFICATE, False, "shop/late"),
        ("shop.example.com", "shop-tls", True, "shop/shop"),
    ]
    assert certificates_needed(manifests.ingresses) == {
        "apps-tls": ["*.apps.example.com"],
        DEFAULT_CERTIFICATE: ["ingress.local"],
        "shop-tls": ["shop.example.com"],
    }
    assert certificates_needed(load_manifests([str(DEMO)]).ingresses) == {
        "cafe-tls": ["cafe.example.com"],
        DEFAULT_CERTIFICATE: ["ingress.local"],
    }
