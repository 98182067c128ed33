"""The controller's certificates: which to make, for which hosts, and the openssl argv (pure).

emu/ingress.py runs the argv; the files it writes are named in nginx.conf (nginx.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..plan.service_model import ServicesPlan
from .controller import controller_config
from .model import CONTROLLER, DEFAULT_CERTIFICATE_HOSTS


def certificates_needed(items: Iterable[Any], controller: str = CONTROLLER) -> dict[str, list[str]]:
    """secretName -> the host names its certificate must cover (self-signed, one per name).

    Always holds DEFAULT_CERTIFICATE (the controller's own, for the default server and hosts
    without TLS). Secrets of the same name in several namespaces share one certificate.
    Endpoints do not matter here, so no ServicesPlan is needed.
    """
    empty = ServicesPlan(seed=0, service_subnet="", lb_pool=None, services=(), slices=())
    config = controller_config(items, empty, controller)
    return {k: list(v) for k, v in config.certificates.items()}


def openssl_argv(hosts: Iterable[str], cert_path: str, key_path: str, days: int = 365) -> list[str]:
    """The argv of `openssl req` that makes a self-signed certificate for `hosts` (first = CN)."""
    hosts = list(hosts) or list(DEFAULT_CERTIFICATE_HOSTS)
    return [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-sha256",
        "-days",
        str(days),
        "-keyout",
        key_path,
        "-out",
        cert_path,
        "-subj",
        f"/CN={hosts[0]}",
        "-addext",
        "subjectAltName=" + ",".join(f"DNS:{h}" for h in hosts),
    ]
