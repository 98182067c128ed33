"""Ingress and IngressClass decoding (spec/ingress.py): what loads, what it decodes to, what fails.

Every bad input must be rejected the way the API server rejects it, each problem naming the
file, the object and the field path.
"""

from __future__ import annotations

import pathlib
import textwrap

import pytest

from testbed.errors import SpecError
from testbed.spec.ingress import (
    IngressBackend,
    IngressClassSpec,
    IngressPath,
    IngressRule,
    IngressSpec,
    IngressTLS,
    ServiceBackend,
    host_error,
    ingress_classes_of,
    ingresses_of,
)
from testbed.spec.workloads import load_manifests

REPO = pathlib.Path(__file__).resolve().parents[2]

HEAD = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
"""


def _svc(name: str, port: int | str) -> IngressBackend:
    return IngressBackend(
        ServiceBackend(name, port if isinstance(port, int) else None, port if isinstance(port, str) else "")
    )


def test_the_demo_loads_with_its_ingress_class():
    m = load_manifests([str(REPO / "manifests" / "ingress-demo.yaml")])
    (cls,) = ingress_classes_of(m.ingresses)
    (ing,) = ingresses_of(m.ingresses)
    assert [i.kind for i in m.ingresses] == ["IngressClass", "Ingress"]
    assert (cls.name, cls.controller, cls.is_default, cls.ref.namespace) == ("nginx", "k8s.io/ingress-nginx", False, "")
    assert str(cls.ref) == "IngressClass nginx"
    assert (ing.key, ing.ingress_class_name) == ("default/cafe", "nginx")
    assert ing.default_backend == _svc("default-http-backend", 80)
    assert ing.tls == (IngressTLS(("cafe.example.com",), "cafe-tls"),)
    (rule,) = ing.rules
    assert rule.host == "cafe.example.com" and rule.http
    assert rule.paths == (
        IngressPath("/coffee", "Prefix", _svc("coffee", 80), "spec.rules[0].http.paths[0]"),
        IngressPath("/tea", "Prefix", _svc("tea", "http"), "spec.rules[0].http.paths[1]"),
        IngressPath("/menu", "Exact", _svc("tea", "http"), "spec.rules[0].http.paths[2]"),
    )
    assert [w.ref.name for w in m.workloads] == ["coffee", "tea", "default-http-backend"]
    assert [s.name for s in m.services] == ["coffee", "tea", "default-http-backend"]


def test_every_accepted_field(manifests):
    m = manifests("""
        apiVersion: v1
        kind: Namespace
        metadata: {name: shop}
        ---
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: all
          namespace: shop
          labels: {app: shop}
          annotations: {kubernetes.io/ingress.class: nginx}
        spec:
          ingressClassName: nginx
          defaultBackend:
            resource: {apiGroup: k8s.example.com, kind: StorageBucket, name: static}
          tls:
            - hosts: ["*.apps.example.com", shop.example.com]
              secretName: shop-tls
            - {}
          rules:
            - host: "*.apps.example.com"
              http:
                paths:
                  - {pathType: ImplementationSpecific, backend: {service: {name: api, port: {name: api}}}}
            - host: bare.example.com
            - http:
                paths:
                  - path: /status
                    pathType: Exact
                    backend: {service: {name: web, port: {number: 80}}}
                  - path: /x
                    pathType: Prefix
                    backend: {service: {name: web, port: {number: 0, name: http}}}
        status: {loadBalancer: {}}
    """)
    (ing,) = m.ingresses
    assert isinstance(ing, IngressSpec) and ing.kind == "Ingress"
    assert (ing.key, ing.class_annotation, ing.labels) == ("shop/all", "nginx", {"app": "shop"})
    assert ing.default_backend == IngressBackend(resource="k8s.example.com/StorageBucket/static")
    assert ing.tls == (IngressTLS(("*.apps.example.com", "shop.example.com"), "shop-tls"), IngressTLS((), ""))
    assert ing.rules[0] == IngressRule(
        "*.apps.example.com",
        (IngressPath("", "ImplementationSpecific", _svc("api", "api"), "spec.rules[0].http.paths[0]"),),
    )
    assert ing.rules[1] == IngressRule("bare.example.com", (), http=False)
    assert ing.rules[2].host == "" and [p.path for p in ing.rules[2].paths] == ["/status", "/x"]
    assert ing.rules[2].paths[1].backend == _svc("web", "http")  # number 0 means unset
    assert [w for w, _ in ing.backends()] == [
        "spec.defaultBackend",
        "spec.rules[0].http.paths[0].backend",
        "spec.rules[2].http.paths[0].backend",
        "spec.rules[2].http.paths[1].backend",
    ]


def test_an_ingress_class_is_cluster_scoped(manifests):
    m = manifests("""
        apiVersion: networking.k8s.io/v1
        kind: IngressClass
        metadata:
          name: internal
          namespace: does-not-exist          # ignored, as for any cluster-scoped object
          annotations: {ingressclass.kubernetes.io/is-default-class: "true"}
        spec:
          controller: k8s.io/ingress-nginx
          parameters: {apiGroup: k8s.example.com, kind: IngressParameters, name: external-lb}
        ---
        apiVersion: networking.k8s.io/v1
        kind: IngressClass
        metadata: {name: scoped}
        spec:
          controller: example.com/ingress-controller
          parameters: {kind: ConfigMap, name: cfg, scope: Namespace, namespace: ops}
    """)
    internal, scoped = m.ingresses
    assert isinstance(internal, IngressClassSpec) and internal.kind == "IngressClass"
    assert (internal.ref.namespace, internal.is_default, internal.parameters) == (
        "",
        True,
        "k8s.example.com/IngressParameters external-lb",
    )
    assert (scoped.is_default, scoped.parameters) == (False, "ConfigMap ops/cfg")


def test_ingress_classes_and_ingresses_of_the_same_name_do_not_clash(manifests):
    m = manifests(
        """
        apiVersion: networking.k8s.io/v1
        kind: IngressClass
        metadata: {name: web}
        spec: {controller: k8s.io/ingress-nginx}
    """,
        HEAD + "spec: {defaultBackend: {service: {name: web, port: {number: 80}}}}\n",
    )
    assert [i.kind for i in m.ingresses] == ["IngressClass", "Ingress"]


@pytest.mark.parametrize(
    "host,ok",
    [
        ("cafe.example.com", True),
        ("*.example.com", True),
        ("*.a.b.example.com", True),
        ("localhost", True),
        ("10.0.0.1", False),
        ("*", False),
        ("foo.*.com", False),
        ("*foo.com", False),
        ("**.foo.com", False),
        ("Cafe.example.com", False),
        ("cafe.example.com:80", False),
        ("-cafe.com", False),
        ("a_b.com", False),
    ],
)
def test_host_rules(host, ok):
    assert (host_error(host) is None) == ok, host_error(host)


# Each case: the spec (under HEAD), then (field path, message fragment) per expected problem.
BAD = {
    "no-rules-no-backend": (
        "spec: {tls: [{hosts: [a.com]}]}",
        [("spec", "either `defaultBackend` or `rules` must be specified")],
    ),
    "empty-rules": ("spec: {rules: []}", [("spec", "either `defaultBackend` or `rules`")]),
    "pathtype-missing": (
        """
        spec:
          rules: [{http: {paths: [{path: /, backend: {service: {name: web, port: {number: 80}}}}]}}]
    """,
        [("spec.rules[0].http.paths[0].pathType", "pathType must be specified")],
    ),
    "pathtype-unknown": (
        """
        spec:
          rules: [{http: {paths: [{path: /, pathType: Regex, backend: {service: {name: web, port: {number: 80}}}}]}}]
    """,
        [("spec.rules[0].http.paths[0].pathType", "must be one of Exact, Prefix, ImplementationSpecific")],
    ),
    "paths": (
        """
        spec:
          rules:
            - host: a.example.com
              http:
                paths:
                  - {path: foo, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
                  - {path: "/a//b", pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
                  - {path: /a/.., pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
                  - {path: /a/%2Fb, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
                  - {pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
                  - {path: relative, pathType: ImplementationSpecific, backend: {service: {name: web, port: {number: 80}}}}
                  - {path: 7, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
    """,
        [
            ("spec.rules[0].http.paths[0].path", "'foo' must be an absolute path"),
            ("spec.rules[0].http.paths[1].path", "must not contain '//'"),
            ("spec.rules[0].http.paths[2].path", "cannot end with '/..'"),
            ("spec.rules[0].http.paths[3].path", "must not contain '%2F'"),
            ("spec.rules[0].http.paths[4].path", "'' must be an absolute path"),
            ("spec.rules[0].http.paths[5].path", "'relative' must be an absolute path"),
            ("spec.rules[0].http.paths[6].path", "expected a string, got integer 7"),
        ],
    ),
    "backends": (
        """
        spec:
          rules:
            - http:
                paths:
                  - {path: /a, pathType: Prefix}
                  - {path: /b, pathType: Prefix, backend: {}}
                  - {path: /c, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}, resource: {kind: X, name: y}}}
                  - {path: /d, pathType: Prefix, backend: {service: {port: {number: 80}}}}
                  - {path: /e, pathType: Prefix, backend: {service: {name: web, port: {number: 80, name: http}}}}
                  - {path: /f, pathType: Prefix, backend: {service: {name: web}}}
                  - {path: /g, pathType: Prefix, backend: {service: {name: web, port: {number: 70000}}}}
                  - {path: /h, pathType: Prefix, backend: {service: {name: web, port: {name: HTTP_1}}}}
                  - {path: /i, pathType: Prefix, backend: {service: {name: 1web, port: {number: 80}}}}
                  - {path: /j, pathType: Prefix, backend: {resource: {name: y}}}
    """,
        [
            ("spec.rules[0].http.paths[0].backend", "required field is missing"),
            ("spec.rules[0].http.paths[1].backend", "a backend needs a `service`"),
            ("spec.rules[0].http.paths[2].backend", "cannot set both resource and service backends"),
            ("spec.rules[0].http.paths[3].backend.service.name", "required field is missing"),
            ("spec.rules[0].http.paths[4].backend.service.port", "cannot set both port name & port number"),
            ("spec.rules[0].http.paths[5].backend.service.port", "port name or number is required"),
            ("spec.rules[0].http.paths[6].backend.service.port.number", "70000 is out of range [1, 65535]"),
            ("spec.rules[0].http.paths[7].backend.service.port.name", "not a valid IANA service name"),
            ("spec.rules[0].http.paths[8].backend.service.name", "'1web' is not a valid Service name"),
            ("spec.rules[0].http.paths[9].backend.resource.kind", "required field is missing"),
        ],
    ),
    "hosts-and-tls": (
        """
        spec:
          tls:
            - {hosts: ["*.*.example.com", ok.example.com], secretName: Cafe_TLS}
          rules:
            - {host: 192.168.1.10}
            - {host: "foo.*.com"}
            - {host: "cafe.example.com:8080"}
            - {host: cafe.example.com, http: {paths: []}}
    """,
        [
            ("spec.rules[0].host", "must be a DNS name, not an IP address"),
            ("spec.rules[1].host", "is not a valid wildcard DNS name"),
            ("spec.rules[2].host", "no port"),
            ("spec.rules[3].http.paths", "needs at least one path"),
            ("spec.tls[0].hosts[0]", "the '*' must be the whole first label"),
            ("spec.tls[0].secretName", "'Cafe_TLS' is not a valid Secret name"),
        ],
    ),
    "class": (
        """
        spec:
          ingressClassName: Nginx_Class
          defaultBackend: {service: {name: web, port: {number: 80}}}
    """,
        [("spec.ingressClassName", "'Nginx_Class' is not a valid name")],
    ),
    "v1beta1": (
        """
        spec:
          backend: {serviceName: web, servicePort: 80}
          rules:
            - http:
                paths: [{path: /, pathType: Prefix, backend: {serviceName: web, servicePort: 80}}]
    """,
        [
            ("spec.backend", "networking.k8s.io/v1 spells it 'defaultBackend'"),
            ("spec.rules[0].http.paths[0].backend.serviceName", "spells it 'service.name'"),
            ("spec.rules[0].http.paths[0].backend.servicePort", "spells it 'service.port'"),
            ("spec.rules[0].http.paths[0].backend", "a backend needs a `service`"),
        ],
    ),
    "unknown-fields": (
        """
        spec:
          defaultBackend: {service: {name: web, port: {number: 80, protocol: TCP}}}
          rules: [{host: a.example.com, https: {}}]
          tls: [{hosts: [a.example.com], secret: x}]
    """,
        [
            ("spec.defaultBackend.service.port.protocol", "unknown field 'protocol'"),
            ("spec.rules[0].https", "unknown field 'https'"),
            ("spec.tls[0].secret", "unknown field 'secret'"),
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_ingresses_name_file_object_and_field(yaml_file, case):
    body, expected = BAD[case]
    path = yaml_file(f"{case}.yaml", HEAD + textwrap.dedent(body).strip("\n") + "\n")
    with pytest.raises(SpecError) as info:
        load_manifests([path])
    got = [(p.file, p.document, p.path) for p in info.value.problems]
    assert len(info.value.problems) == len(expected), "\n".join(map(str, info.value.problems))
    for (field, fragment), problem in zip(expected, info.value.problems):
        assert (problem.file, problem.document, problem.path) == (path, "Ingress default/web", field), got
        assert fragment in problem.message, str(problem)
        assert str(problem).startswith(f"{path} (Ingress default/web): {field}: ")


def test_the_class_annotation_must_match_the_class_name(yaml_file):
    path = yaml_file(
        "ann.yaml",
        """
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: web
          annotations: {kubernetes.io/ingress.class: traefik}
        spec:
          ingressClassName: nginx
          defaultBackend: {service: {name: web, port: {number: 80}}}
    """,
    )
    with pytest.raises(SpecError) as info:
        load_manifests([path])
    assert str(info.value) == (
        f"{path} (Ingress default/web): metadata.annotations.kubernetes.io/ingress.class: "
        "kubernetes.io/ingress.class annotation 'traefik' must match `ingressClassName` "
        "'nginx' when both are specified"
    )


def test_an_ingress_in_a_list_names_its_item(yaml_file):
    path = yaml_file(
        "list.yaml",
        """
        apiVersion: v1
        kind: List
        items:
          - apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata: {name: web}
            spec:
              rules: [{http: {paths: [{path: /, backend: {service: {name: web, port: {number: 80}}}}]}}]
    """,
    )
    with pytest.raises(SpecError) as info:
        load_manifests([path])
    assert str(info.value) == (
        f"{path} (Ingress default/web): items[0].spec.rules[0].http.paths[0].pathType: "
        "pathType must be specified (Exact, Prefix or ImplementationSpecific)"
    )


@pytest.mark.parametrize(
    "spec,field,fragment",
    [
        ("{}", "spec.controller", "required field is missing"),
        ("{controller: nginx}", "spec.controller", 'must be a domain-prefixed path (such as "acme.io/foo")'),
        ("{controller: Example.COM/x}", "spec.controller", "the domain 'Example.COM' is not a valid DNS name"),
        ("{controller: example.com/a b}", "spec.controller", "holds characters outside"),
        ("{controller: example.com/" + "x" * 250 + "}", "spec.controller", "must be no more than 250 characters"),
        (
            "{controller: k8s.io/ingress-nginx, parameters: {kind: X, name: y, scope: Namespace}}",
            "spec.parameters.namespace",
            "`parameters.scope` is set to 'Namespace'",
        ),
        (
            "{controller: k8s.io/ingress-nginx, parameters: {kind: X, name: y, namespace: ops}}",
            "spec.parameters.namespace",
            "`parameters.scope` is set to 'Cluster'",
        ),
        (
            "{controller: k8s.io/ingress-nginx, parameters: {kind: X, name: y, scope: Global}}",
            "spec.parameters.scope",
            "must be Cluster or Namespace",
        ),
        (
            "{controller: k8s.io/ingress-nginx, parameters: {name: y}}",
            "spec.parameters.kind",
            "required field is missing",
        ),
        ("{controller: k8s.io/ingress-nginx, default: true}", "spec.default", "unknown field 'default'"),
    ],
)
def test_bad_ingress_classes(yaml_file, spec, field, fragment):
    path = yaml_file(
        "class.yaml",
        f"""
        apiVersion: networking.k8s.io/v1
        kind: IngressClass
        metadata: {{name: nginx}}
        spec: {spec}
    """,
    )
    with pytest.raises(SpecError) as info:
        load_manifests([path])
    (problem,) = info.value.problems
    assert (problem.file, problem.document, problem.path) == (path, "IngressClass nginx", field)
    assert fragment in problem.message


def test_every_problem_of_a_file_at_once_and_the_namespace_must_exist(yaml_file):
    path = yaml_file(
        "many.yaml",
        """
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: a, namespace: shop}
        spec: {defaultBackend: {service: {name: web, port: {number: 80}}}}
        ---
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: b}
        spec: {}
        ---
        apiVersion: networking.k8s.io/v1beta1
        kind: Ingress
        metadata: {name: c}
        spec: {}
    """,
    )
    with pytest.raises(SpecError) as info:
        load_manifests([path])
    got = {(p.document, p.path, p.message.split(":")[0]) for p in info.value.problems}
    assert got == {
        ("Ingress default/b", "spec", "either `defaultBackend` or `rules` must be specified"),
        (
            "document 3",
            "apiVersion",
            "Ingress is served as apiVersion 'networking.k8s.io/v1', got 'networking.k8s.io/v1beta1'",
        ),
        ("Ingress shop/a", "metadata.namespace", "namespace 'shop' does not exist"),
    }
