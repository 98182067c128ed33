"""networking.k8s.io/v1 Ingress and IngressClass: strict decoding and the API server's validation.

Registered in workloads.EXTENSIONS: `decode_ingress(doc, ref, labels, annotations)` decodes one
`kind: Ingress` into an `IngressSpec`, `decode_ingress_class` one `kind: IngressClass` into an
`IngressClassSpec`; both land, in manifest order, in Manifests.ingresses (tell them apart by
`.kind`, or with `ingresses_of` / `ingress_classes_of`). Problems are reported on the cursor,
each naming file, object and field; the decoder then returns None.

Validation follows k8s.io/kubernetes pkg/apis/networking/validation (ValidateIngressSpec,
ValidateIngressClass):
- the spec needs `defaultBackend` or at least one rule;
- a rule's host is a lower-case DNS name, possibly a wildcard `*.example.com` (the `*` is a
  whole first label), never an IP address; a rule with `http` needs at least one path;
- every path has a pathType (Exact, Prefix or ImplementationSpecific); Exact and Prefix paths
  are absolute and contain no `//`, `/./`, `/../`, `%2f` nor end with `/.` or `/..`; an
  ImplementationSpecific path, when given, is absolute;
- a backend is a service (name, and exactly one of port.number 1-65535 or port.name) or a
  typed resource reference, not both;
- tls[].hosts follow the host rules, tls[].secretName is a Secret name;
- `ingressClassName` is a DNS subdomain, and the deprecated `kubernetes.io/ingress.class`
  annotation must match it when both are given;
- an IngressClass's spec.controller is a domain-prefixed path (`k8s.io/ingress-nginx`) of at
  most 250 characters; its parameters reference (kind, name, scope Cluster|Namespace) is
  checked and otherwise ignored.

Which controller serves which Ingress, and what its nginx does with it, is the ingress/ package.
v1beta1 spellings (`spec.backend`, `serviceName`, `servicePort`) are rejected with a hint.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .decode import Doc
from .model import Named, ObjectRef
from .names import dns1035_label_error, dns1123_subdomain_error, port_name_error

PATH_TYPES = ("Exact", "Prefix", "ImplementationSpecific")
CLASS_ANNOTATION = "kubernetes.io/ingress.class"  # deprecated, still honoured
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
MAX_CONTROLLER_LENGTH = 250

_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")
_WILDCARD = re.compile(r"^\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HTTP_PATH = re.compile(r"^[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$")
_V1BETA1 = {"backend": "defaultBackend", "serviceName": "service.name", "servicePort": "service.port"}


@dataclass(frozen=True)
class ServiceBackend:
    """IngressServiceBackend: a Service of the Ingress's namespace and one of its ports."""

    name: str
    port_number: int | None = None
    port_name: str = ""

    @property
    def port(self) -> int | str:
        return self.port_number if self.port_number is not None else self.port_name

    def __str__(self) -> str:
        return f"{self.name}:{self.port}"


@dataclass(frozen=True)
class IngressBackend:
    """A service backend, or a typed reference to another resource (`apiGroup/Kind/name`)."""

    service: ServiceBackend | None = None
    resource: str = ""

    def __str__(self) -> str:
        return str(self.service) if self.service is not None else f"resource {self.resource}"


@dataclass(frozen=True)
class IngressPath:
    path: str  # "" only for ImplementationSpecific (means "/")
    path_type: str  # Exact | Prefix | ImplementationSpecific
    backend: IngressBackend
    field: str = ""  # "spec.rules[0].http.paths[1]", for messages


@dataclass(frozen=True)
class IngressRule:
    host: str  # "" = every host (the controller's default server)
    paths: tuple[IngressPath, ...] = ()
    http: bool = True  # False: `http` absent, the host's requests go to the default backend


@dataclass(frozen=True)
class IngressTLS:
    hosts: tuple[str, ...] = ()
    secret_name: str = ""  # "" = the controller's default certificate


@dataclass(frozen=True)
class IngressSpec(Named):
    ref: ObjectRef
    ingress_class_name: str = ""  # spec.ingressClassName as written ("" = not set)
    class_annotation: str = ""  # the deprecated kubernetes.io/ingress.class annotation
    default_backend: IngressBackend | None = None
    rules: tuple[IngressRule, ...] = ()
    tls: tuple[IngressTLS, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    path: str = ""  # the object's path in its file ("" or "items[2]")

    @property
    def kind(self) -> str:
        return "Ingress"

    def backends(self) -> Iterable[tuple[str, IngressBackend]]:
        """(field path, backend) of the default backend and of every path."""
        if self.default_backend is not None:
            yield "spec.defaultBackend", self.default_backend
        for rule in self.rules:
            for p in rule.paths:
                yield f"{p.field}.backend", p.backend


@dataclass(frozen=True)
class IngressClassSpec:
    """A cluster-scoped IngressClass: which controller implements Ingresses of this class."""

    ref: ObjectRef
    controller: str
    is_default: bool = False  # annotation ingressclass.kubernetes.io/is-default-class: "true"
    parameters: str = ""  # "apiGroup/Kind name" of spec.parameters, informative only
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "IngressClass"

    @property
    def name(self) -> str:
        return self.ref.name


def ingresses_of(items: Iterable[Any]) -> tuple[IngressSpec, ...]:
    """The Ingress objects of Manifests.ingresses (which also holds IngressClasses)."""
    return tuple(i for i in items if isinstance(i, IngressSpec))


def ingress_classes_of(items: Iterable[Any]) -> tuple[IngressClassSpec, ...]:
    return tuple(i for i in items if isinstance(i, IngressClassSpec))


# -- name rules -------------------------------------------------------------------------------


def host_error(host: str) -> str | None:
    """IsDNS1123Subdomain, or IsWildcardDNS1123Subdomain when the host holds a `*`; no IPs."""
    try:
        ipaddress.ip_address(host)
        return f"{host!r} must be a DNS name, not an IP address"
    except ValueError:
        pass
    if len(host) > 253:
        return f"{host!r} is longer than 253 characters"
    if "*" in host:
        if not _WILDCARD.match(host):
            return (
                f"{host!r} is not a valid wildcard DNS name: the '*' must be the whole first label, "
                "as in '*.example.com'"
            )
        return None
    if dns1123_subdomain_error(host):
        return (
            f"{host!r} is not a valid host name (lower-case letters, digits, '-' and '.', "
            "starting and ending alphanumeric; no port)"
        )
    return None


def domain_prefixed_path_error(value: str) -> str | None:
    """IsDomainPrefixedPath: `example.com/some/path`."""
    domain, slash, rest = value.partition("/")
    if not slash or not domain or not rest:
        return f'{value!r} must be a domain-prefixed path (such as "acme.io/foo")'
    if dns1123_subdomain_error(domain):
        return f"{value!r}: the domain {domain!r} is not a valid DNS name"
    if not _HTTP_PATH.match(rest):
        return f"{value!r}: the path {rest!r} holds characters outside [A-Za-z0-9/-._~%!$&'()*+,;=:]"
    return None


# -- decoding ---------------------------------------------------------------------------------


def _v1beta1_hint(key: str, _allowed: set[str]) -> str:
    hint = _V1BETA1.get(key)
    return f" (networking.k8s.io/v1 spells it {hint!r})" if hint else ""


def _check_keys(doc: Doc, known: Iterable[str], ignored: Iterable[str] = ()) -> None:
    """Doc.check_keys with a hint for networking.k8s.io/v1beta1 field names."""
    doc.check_keys(known, ignored, _v1beta1_hint)


def decode_ingress(
    doc: Doc, ref: ObjectRef, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> IngressSpec | None:
    """Decode and validate one Ingress; problems go to `doc`, None when it has any."""
    before = len(doc.problems.items)
    doc.check_keys(("apiVersion", "kind", "metadata", "spec"), ("status",))
    spec = doc.mapping("spec", required=True)
    if spec is None:
        return None
    _check_keys(spec, ("ingressClassName", "defaultBackend", "rules", "tls"))

    class_name = spec.str("ingressClassName", default="") or ""
    if class_name and dns1123_subdomain_error(class_name):
        spec.error(dns1123_subdomain_error(class_name) or "", "ingressClassName")
    annotation = annotations.get(CLASS_ANNOTATION, "")
    if class_name and CLASS_ANNOTATION in annotations and annotation != class_name:
        doc.error(
            f"{CLASS_ANNOTATION} annotation {annotation!r} must match `ingressClassName` "
            f"{class_name!r} when both are specified",
            f"metadata.annotations.{CLASS_ANNOTATION}",
        )

    default = None
    bdoc = spec.mapping("defaultBackend")
    if bdoc is not None:
        default = _decode_backend(bdoc)

    rules: list[IngressRule] = []
    for rdoc in spec.items("rules"):
        if not rdoc.is_mapping():
            continue
        rule = _decode_rule(rdoc)
        if rule is not None:
            rules.append(rule)
    if not spec.field("defaultBackend").present() and not _list_values(spec, "rules"):
        spec.error("either `defaultBackend` or `rules` must be specified")

    tls: list[IngressTLS] = []
    for tdoc in spec.items("tls"):
        if not tdoc.is_mapping():
            continue
        _check_keys(tdoc, ("hosts", "secretName"))
        hosts: list[str] = []
        for hdoc in tdoc.items("hosts"):
            if not isinstance(hdoc.value, str):
                hdoc.error(f"expected a string, got {hdoc.value!r}")
                continue
            err = host_error(hdoc.value)
            if err:
                hdoc.error(err)
            hosts.append(hdoc.value)
        secret = tdoc.str("secretName", default="") or ""
        if secret and dns1123_subdomain_error(secret):
            tdoc.error(f"{secret!r} is not a valid Secret name (lower-case letters, digits, '-' and '.')", "secretName")
        tls.append(IngressTLS(tuple(hosts), secret))

    if len(doc.problems.items) != before:
        return None
    return IngressSpec(
        ref=ref,
        ingress_class_name=class_name,
        class_annotation=annotation,
        default_backend=default,
        rules=tuple(rules),
        tls=tuple(tls),
        labels=dict(labels),
        annotations=dict(annotations),
        path=doc.path,
    )


def _list_values(doc: Doc, key: str) -> list[Any]:
    value = doc.value.get(key) if isinstance(doc.value, dict) else None
    return value if isinstance(value, list) else []


def _decode_rule(rdoc: Doc) -> IngressRule | None:
    _check_keys(rdoc, ("host", "http"))
    host = rdoc.str("host", default="") or ""
    if host:
        err = host_error(host)
        if err:
            rdoc.error(err, "host")
    hdoc = rdoc.mapping("http")
    if hdoc is None:
        return IngressRule(host, (), http=False)
    _check_keys(hdoc, ("paths",))
    paths: list[IngressPath] = []
    pnode = hdoc.field("paths")
    if not pnode.present() or (isinstance(pnode.value, list) and not pnode.value):
        hdoc.error("required field is missing: a rule with `http` needs at least one path", "paths")
    for pdoc in hdoc.items("paths"):
        if not pdoc.is_mapping():
            continue
        path = _decode_path(pdoc)
        if path is not None:
            paths.append(path)
    return IngressRule(host, tuple(paths), http=True)


def _decode_path(pdoc: Doc) -> IngressPath | None:
    _check_keys(pdoc, ("path", "pathType", "backend"))
    raw_path = pdoc.field("path")
    path_ok = not raw_path.present() or isinstance(raw_path.value, str)
    path = pdoc.str("path", default="") or ""
    ptype = pdoc.str("pathType", default=None)
    if ptype is None and not pdoc.field("pathType").present():
        pdoc.error("pathType must be specified (Exact, Prefix or ImplementationSpecific)", "pathType")
    elif ptype is not None and ptype not in PATH_TYPES:
        pdoc.error(f"must be one of {', '.join(PATH_TYPES)}, got {ptype!r}", "pathType")
        ptype = None
    if not path_ok:
        pass  # the type error is reported; no follow-on noise
    elif ptype in ("Exact", "Prefix"):
        if not path.startswith("/"):
            pdoc.error(f"{path!r} must be an absolute path (starting with '/')", "path")
        for seq in _INVALID_PATH_SEQUENCES:
            if seq in path:
                pdoc.error(f"{path!r} must not contain '{seq}'", "path")
        for suffix in _INVALID_PATH_SUFFIXES:
            if path.endswith(suffix):
                pdoc.error(f"{path!r} cannot end with '{suffix}'", "path")
    elif ptype == "ImplementationSpecific" and path and not path.startswith("/"):
        pdoc.error(f"{path!r} must be an absolute path (starting with '/')", "path")
    bdoc = pdoc.mapping("backend", required=True)
    backend = _decode_backend(bdoc) if bdoc is not None else None
    if ptype is None or backend is None:
        return None
    return IngressPath(path, ptype, backend, pdoc.path)


def _decode_backend(bdoc: Doc) -> IngressBackend | None:
    _check_keys(bdoc, ("service", "resource"))
    sdoc, rdoc = bdoc.mapping("service"), bdoc.mapping("resource")
    given = [k for k in ("service", "resource") if bdoc.field(k).present()]
    if len(given) == 2:
        bdoc.error("cannot set both resource and service backends")
        return None
    if not given:
        bdoc.error("a backend needs a `service` (name and port) or a `resource`")
        return None
    if rdoc is not None:
        _check_keys(rdoc, ("apiGroup", "kind", "name"))
        group = rdoc.str("apiGroup", default="") or ""
        if group and dns1123_subdomain_error(group):
            rdoc.error(f"{group!r} is not a valid API group", "apiGroup")
        kind = rdoc.str("kind", required=True) or ""
        name = rdoc.str("name", required=True) or ""
        return IngressBackend(resource=f"{group + '/' if group else ''}{kind}/{name}")
    if sdoc is None:
        return None
    _check_keys(sdoc, ("name", "port"))
    name = sdoc.str("name", required=True) or ""
    if name and dns1035_label_error(name):
        sdoc.error(dns1035_label_error(name) or "", "name")
    podoc = sdoc.mapping("port")
    number, port_name = None, ""
    if podoc is not None:
        _check_keys(podoc, ("number", "name"))
        number = podoc.int("number", default=None)
        port_name = podoc.str("name", default="") or ""
        if number == 0:
            number = None  # zero means unset, as in the API
        if number is not None and port_name:
            sdoc.error("cannot set both port name & port number", "port")
            return None
        if number is not None and not 1 <= number <= 65535:
            podoc.error(f"{number} is out of range [1, 65535]", "number")
            return None
        if port_name:
            err = port_name_error(port_name)
            if err:
                podoc.error(err, "name")
                return None
    if number is None and not port_name:
        sdoc.error("port name or number is required", "port")
        return None
    if not name:
        return None
    return IngressBackend(service=ServiceBackend(name, number, port_name))


def decode_ingress_class(
    doc: Doc, ref: ObjectRef, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> IngressClassSpec | None:
    """Decode and validate one (cluster-scoped) IngressClass."""
    before = len(doc.problems.items)
    doc.check_keys(("apiVersion", "kind", "metadata", "spec"))
    spec = doc.mapping("spec", required=True)
    if spec is None:
        return None
    spec.check_keys(("controller", "parameters"))
    controller = spec.str("controller", required=True) or ""
    if controller:
        if len(controller) > MAX_CONTROLLER_LENGTH:
            spec.error(f"must be no more than {MAX_CONTROLLER_LENGTH} characters", "controller")
        else:
            err = domain_prefixed_path_error(controller)
            if err:
                spec.error(err, "controller")
    parameters = ""
    pdoc = spec.mapping("parameters")
    if pdoc is not None:
        pdoc.check_keys(("apiGroup", "kind", "name", "namespace", "scope"))
        group = pdoc.str("apiGroup", default="") or ""
        if group and dns1123_subdomain_error(group):
            pdoc.error(f"{group!r} is not a valid API group", "apiGroup")
        kind = pdoc.str("kind", required=True) or ""
        name = pdoc.str("name", required=True) or ""
        scope = pdoc.str("scope", default="Cluster") or "Cluster"
        namespace = pdoc.str("namespace", default="") or ""
        if scope not in ("Cluster", "Namespace"):
            pdoc.error(f"must be Cluster or Namespace, got {scope!r}", "scope")
        elif scope == "Namespace" and not namespace:
            pdoc.error("`parameters.scope` is set to 'Namespace': namespace is required", "namespace")
        elif scope == "Cluster" and namespace:
            pdoc.error("`parameters.scope` is set to 'Cluster': namespace must not be set", "namespace")
        parameters = f"{group + '/' if group else ''}{kind} {namespace + '/' if namespace else ''}{name}"
    if len(doc.problems.items) != before:
        return None
    return IngressClassSpec(
        ref=ref,
        controller=controller,
        is_default=annotations.get(DEFAULT_CLASS_ANNOTATION, "") == "true",
        parameters=parameters,
        labels=dict(labels),
        annotations=dict(annotations),
    )
