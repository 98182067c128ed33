"""Which Ingresses the controller serves (ingress/classes.py): its classes, the default class."""

from __future__ import annotations

import textwrap

from testbed.ingress import CLASS_NAME, CONTROLLER, ingress_classes, select_ingresses

# -- classes ---------------------------------------------------------------------------------------


def test_the_controller_serves_its_classes_only(ingress_features):
    manifests, _ = ingress_features
    ours, warnings = select_ingresses(manifests.ingresses)
    assert [i.key for i in ours] == ["shop/shop", "shop/broken", "shop/late"]  # broken: the default class
    assert warnings == (
        "Ingress shop/theirs: IngressClass 'other' belongs to controller 'example.com/other-controller', not the "
        "testbed's 'k8s.io/ingress-nginx': ignored by our controller",
        "Ingress shop/lost: IngressClass 'traefik' (from spec.ingressClassName) does not exist: ignored",
    )
    # The builtin class `nginx` comes with the controller; the manifests' classes follow it.
    assert [(c.name, c.controller) for c in ingress_classes(manifests.ingresses)] == [
        (CLASS_NAME, CONTROLLER),
        ("other", "example.com/other-controller"),
        ("internal", CONTROLLER),
    ]


def test_class_resolution_like_the_api_server_and_ingress_nginx(manifests):
    def ingress(name: str, extra: str = "", annotations: str = "{}") -> str:
        return (
            f"apiVersion: networking.k8s.io/v1\nkind: Ingress\n"
            f"metadata: {{name: {name}, annotations: {annotations}}}\n"
            f"spec: {{defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}{', ' + extra if extra else ''}}}\n"
        )

    m = manifests(
        ingress("no-class"),
        ingress("annotated", annotations="{kubernetes.io/ingress.class: nginx}"),
        ingress("named", "ingressClassName: nginx"),
    )
    ours, warnings = select_ingresses(m.ingresses)
    assert [i.name for i in ours] == ["annotated", "named"]
    assert warnings == (
        "Ingress default/no-class: no ingressClassName and no default IngressClass: ignored by the "
        "testbed's controller (set ingressClassName: nginx)",
    )
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
    defaults = "".join(
        f"""
        ---
        apiVersion: networking.k8s.io/v1
        kind: IngressClass
        metadata: {{name: d{i}, annotations: {{ingressclass.kubernetes.io/is-default-class: "true"}}}}
        spec: {{controller: k8s.io/ingress-nginx}}
    """
        for i in (1, 2)
    )
    m = manifests(textwrap.dedent(defaults), ingress("no-class"))
    ours, warnings = select_ingresses(m.ingresses)
    assert ours == () and "2 IngressClasses are marked default (d1, d2)" in warnings[0]
