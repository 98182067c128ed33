"""The testbed's ingress controller: Ingress objects -> an nginx.conf with ingress-nginx's semantics.

Pure (no root, no subprocess), beside kubeproxy/ and netpol/: spec/ingress.py decodes the
objects, this package decides what the controller does with them, emu/ingress.py runs the nginx.

    classes.py     which Ingresses the controller serves (IngressClass, default class)
    model.py       the controller's model: servers, locations, upstreams, certificates
    controller.py  Ingresses + ServicesPlan -> the model (controller_config), plan warnings
    nginx.py       the model -> nginx.conf text (Debian's nginx, core http + ssl modules only)
    tls.py         the certificates to make and the openssl argv that makes them
    routes.py      an oracle: which backend a request reaches, by nginx's own selection rules

Input: Manifests.ingresses (Ingresses and IngressClasses, in manifest order, which stands for
creation order) and the ServicesPlan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import lazy

if TYPE_CHECKING:  # the package's names, each loaded when first read (testbed/lazy.py): start-up time
    from .classes import builtin_class, ingress_classes, select_ingresses
    from .controller import controller_config, ingress_warnings
    from .model import (
        CLASS_NAME,
        CONTROLLER,
        DEFAULT_CERTIFICATE,
        DEFAULT_CERTIFICATE_HOSTS,
        DEFAULT_SERVER,
        DEFAULT_UPSTREAM,
        FORCE_SSL_REDIRECT,
        REDIRECT_CODE,
        SSL_REDIRECT,
        IngressConfig,
        Location,
        Server,
        Upstream,
    )
    from .nginx import render_config, render_nginx_conf, server_name
    from .routes import Route, normalize_host, normalize_uri, route
    from .tls import certificates_needed, openssl_argv

__all__ = [
    "CLASS_NAME",
    "CONTROLLER",
    "DEFAULT_CERTIFICATE",
    "DEFAULT_CERTIFICATE_HOSTS",
    "DEFAULT_SERVER",
    "DEFAULT_UPSTREAM",
    "FORCE_SSL_REDIRECT",
    "REDIRECT_CODE",
    "SSL_REDIRECT",
    "IngressConfig",
    "Location",
    "Route",
    "Server",
    "Upstream",
    "builtin_class",
    "certificates_needed",
    "controller_config",
    "ingress_classes",
    "ingress_warnings",
    "normalize_host",
    "normalize_uri",
    "openssl_argv",
    "render_config",
    "render_nginx_conf",
    "route",
    "select_ingresses",
    "server_name",
]

if not TYPE_CHECKING:  # hidden from type checkers, which keep flagging a name the package lacks
    __getattr__ = lazy.exports(__name__, __file__)
