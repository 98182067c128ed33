"""Label selector, toleration and name-rule semantics (spec/selectors.py, spec/model.py, spec/names.py)."""

from __future__ import annotations

import pytest

from testbed.spec.model import Taint, Toleration
from testbed.spec.names import (
    dns1123_label_error,
    dns1123_subdomain_error,
    label_key_error,
    label_value_error,
    port_name_error,
)
from testbed.spec.selectors import LabelSelector, Requirement

WEB = {"app": "web", "tier": "front"}


@pytest.mark.parametrize(
    "req,labels,expected",
    [
        (Requirement("app", "In", ("web", "api")), WEB, True),
        (Requirement("app", "In", ("api",)), WEB, False),
        (Requirement("env", "In", ("prod",)), WEB, False),  # absent key is not In
        (Requirement("app", "NotIn", ("api",)), WEB, True),
        (Requirement("app", "NotIn", ("web",)), WEB, False),
        (Requirement("env", "NotIn", ("prod",)), WEB, True),  # absent key is NotIn
        (Requirement("tier", "Exists"), WEB, True),
        (Requirement("env", "Exists"), WEB, False),
        (Requirement("env", "DoesNotExist"), WEB, True),
        (Requirement("tier", "DoesNotExist"), WEB, False),
        (Requirement("flag", "Exists"), {"flag": ""}, True),  # an empty value still exists
    ],
)
def test_requirement_semantics(req, labels, expected):
    assert req.matches(labels) is expected


def test_unknown_operator_is_a_programming_error():
    with pytest.raises(ValueError):
        Requirement("a", "Like", ("b",)).matches({"a": "b"})


def test_selector_ands_labels_and_expressions():
    sel = LabelSelector(
        (("app", "web"),), (Requirement("tier", "In", ("front", "edge")), Requirement("canary", "DoesNotExist"))
    )
    assert sel.matches(WEB)
    assert not sel.matches({"app": "web", "tier": "back"})
    assert not sel.matches({"app": "api", "tier": "front"})
    assert not sel.matches({**WEB, "canary": "yes"})


def test_empty_selector_matches_everything():
    assert LabelSelector().is_empty()
    assert LabelSelector().matches({}) and LabelSelector().matches(WEB)
    assert str(LabelSelector()) == "<all>"


def test_selector_of_a_map_is_sorted_and_canonical():
    assert LabelSelector.of({"b": "2", "a": "1"}) == LabelSelector.of({"a": "1", "b": "2"})
    assert str(LabelSelector.of({"b": "2", "a": "1"})) == "a=1,b=2"


CP = Taint("node-role.kubernetes.io/control-plane", "", "NoSchedule")


@pytest.mark.parametrize(
    "toleration,taint,expected",
    [
        (Toleration("", "Exists"), CP, True),  # tolerates everything
        (Toleration("node-role.kubernetes.io/control-plane", "Exists"), CP, True),
        (Toleration("node-role.kubernetes.io/control-plane", "Exists", "", "NoSchedule"), CP, True),
        (Toleration("node-role.kubernetes.io/control-plane", "Exists", "", "NoExecute"), CP, False),
        (Toleration("node-role.kubernetes.io/master", "Exists"), CP, False),
        (Toleration("node-role.kubernetes.io/control-plane", "Equal", ""), CP, True),
        (Toleration("node-role.kubernetes.io/control-plane", "Equal", "true"), CP, False),
        (Toleration("dedicated", "Equal", "gpu"), Taint("dedicated", "gpu", "NoSchedule"), True),
        (Toleration("dedicated", "Equal", "cpu"), Taint("dedicated", "gpu", "NoSchedule"), False),
    ],
)
def test_toleration_semantics(toleration, taint, expected):
    assert toleration.tolerates(taint) is expected


@pytest.mark.parametrize(
    "name,ok",
    [
        ("web", True),
        ("web-1", True),
        ("1web", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("Web", False),
        ("web_1", False),
        ("-web", False),
        ("web-", False),
        ("web.app", False),
        ("", False),
    ],
)
def test_dns1123_label(name, ok):
    assert (dns1123_label_error(name) is None) is ok


@pytest.mark.parametrize(
    "name,ok",
    [
        ("web.app", True),
        ("web-1.example.com", True),
        ("a" * 253, True),
        ("a" * 254, False),
        ("web..app", False),
        (".web", False),
        ("Web.app", False),
    ],
)
def test_dns1123_subdomain(name, ok):
    assert (dns1123_subdomain_error(name) is None) is ok


@pytest.mark.parametrize(
    "name,ok",
    [
        ("http", True),
        ("dns-tcp", True),
        ("h2c", True),
        ("a" * 15, True),
        ("a" * 16, False),
        ("8080", False),
        ("dns--tcp", False),
        ("-http", False),
        ("HTTP", False),
    ],
)
def test_port_names(name, ok):
    assert (port_name_error(name) is None) is ok


@pytest.mark.parametrize(
    "key,ok",
    [
        ("app", True),
        ("app.kubernetes.io/name", True),
        ("k8s.io/a_b.c-d", True),
        ("A", True),
        ("/app", False),
        ("app/", False),
        ("a/b/c", False),
        ("Example.com/app", False),
        ("-a", False),
        ("a" * 64, False),
        ("", False),
    ],
)
def test_label_keys(key, ok):
    assert (label_key_error(key) is None) is ok


@pytest.mark.parametrize(
    "value,ok",
    [
        ("", True),
        ("web", True),
        ("v1.2_3-x", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("-a", False),
        ("a-", False),
        ("a b", False),
    ],
)
def test_label_values(value, ok):
    assert (label_value_error(value) is None) is ok
