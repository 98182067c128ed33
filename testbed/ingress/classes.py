"""Which Ingresses the testbed's controller serves: IngressClasses and the default class (pure).

It implements controller `k8s.io/ingress-nginx`. The IngressClass `nginx` is installed with it
(as its Helm chart does) unless the manifests declare their own `nginx`. An Ingress is served
when its class (spec.ingressClassName, else the deprecated annotation, else the one
IngressClass marked is-default-class, as the API server's admission defaults it) is an
IngressClass of that controller; every other Ingress is ignored with a warning.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..spec.ingress import IngressClassSpec, IngressSpec, ingress_classes_of, ingresses_of
from ..spec.model import ObjectRef
from .model import CLASS_NAME, CONTROLLER


def builtin_class() -> IngressClassSpec:
    return IngressClassSpec(ObjectRef("<cluster>", "IngressClass", "", CLASS_NAME), CONTROLLER)


def ingress_classes(items: Iterable[Any]) -> tuple[IngressClassSpec, ...]:
    """The cluster's IngressClasses: the manifests' ones, plus `nginx` unless they define it."""
    classes = ingress_classes_of(items)
    if not any(c.name == CLASS_NAME for c in classes):
        classes = (builtin_class(),) + classes
    return classes


def select_ingresses(
    items: Iterable[Any],
    controller: str = CONTROLLER,
) -> tuple[tuple[IngressSpec, ...], tuple[str, ...]]:
    """The Ingresses `controller` serves, in order, and a warning for each one it ignores."""
    items = tuple(items)
    classes = {c.name: c for c in ingress_classes(items)}
    defaults = [c.name for c in classes.values() if c.is_default]
    ours: list[IngressSpec] = []
    warnings: list[str] = []
    for ing in ingresses_of(items):
        name, how = ing.ingress_class_name, "spec.ingressClassName"
        if not name and ing.class_annotation:
            name, how = ing.class_annotation, "the deprecated kubernetes.io/ingress.class annotation"
        if not name:
            if len(defaults) == 1:
                name, how = defaults[0], "the default IngressClass"
            elif len(defaults) > 1:
                warnings.append(
                    f"Ingress {ing.key}: no ingressClassName and {len(defaults)} IngressClasses are "
                    f"marked default ({', '.join(sorted(defaults))}): the API server's admission "
                    "would refuse it; ignored"
                )
                continue
            else:
                warnings.append(
                    f"Ingress {ing.key}: no ingressClassName and no default IngressClass: "
                    f"ignored by the testbed's controller (set ingressClassName: {CLASS_NAME})"
                )
                continue
        cls = classes.get(name)
        if cls is None:
            warnings.append(f"Ingress {ing.key}: IngressClass {name!r} (from {how}) does not exist: ignored")
        elif cls.controller != controller:
            warnings.append(
                f"Ingress {ing.key}: IngressClass {name!r} belongs to controller {cls.controller!r}, "
                f"not the testbed's {controller!r}: ignored by our controller"
            )
        else:
            ours.append(ing)
    return tuple(ours), tuple(warnings)
