"""Kubernetes name rules (apimachinery validation), pure; used by every loader."""

from __future__ import annotations

import re

from ..errors import excerpt

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def dns1123_label_error(name: str) -> str | None:
    """Namespaces, container names and Service names are RFC 1123 labels."""
    if len(name) > 63:
        return f"{excerpt(name)} is longer than 63 characters"
    if not _DNS1123_LABEL.match(name):
        return f"{excerpt(name)} is not a valid name (lower-case letters, digits and '-', starting and ending alphanumeric)"
    return None


def dns1035_label_error(name: str) -> str | None:
    """Service names (and a backend's Service name) are RFC 1035 labels: they start with a letter."""
    if len(name) > 63:
        return f"{excerpt(name)} is longer than 63 characters"
    if not _DNS1035_LABEL.match(name):
        return (
            f"{excerpt(name)} is not a valid Service name (lower-case letters, digits and '-', "
            "starting with a letter and ending alphanumeric)"
        )
    return None


def dns1123_subdomain_error(name: str) -> str | None:
    """Pod, Deployment and node names are RFC 1123 subdomains."""
    if len(name) > 253:
        return f"{excerpt(name)} is longer than 253 characters"
    if not _DNS1123_SUBDOMAIN.match(name):
        return f"{excerpt(name)} is not a valid name (lower-case letters, digits, '-' and '.')"
    return None


def port_name_error(name: str) -> str | None:
    """containerPort names are IANA service names: <= 15 chars, at least one letter."""
    if len(name) > 15:
        return f"port name {excerpt(name)} is longer than 15 characters"
    if not _IANA_SVC_NAME.match(name) or "--" in name or not re.search(r"[a-z]", name):
        return f"port name {excerpt(name)} is not a valid IANA service name"
    return None


def label_key_error(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or dns1123_subdomain_error(prefix)):
        return f"label key {excerpt(key)} has an invalid prefix"
    if len(name) > 63 or not _LABEL_NAME.match(name):
        return f"label key {excerpt(key)} is not a valid qualified name"
    return None


def label_value_error(value: str) -> str | None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return f"label value {excerpt(value)} is not valid (<= 63 alphanumerics, '-', '_' or '.')"
    return None
