"""Service load spread and the chi-square uniformity test, with and without scipy."""

from __future__ import annotations

import math

import pytest

from testbed.analysis import chisquare_uniform, endpoints_from_plan, from_rows, load_spread, spread_tests, stats

from .synthetic_runs import row, synthetic_rows

ENDPOINTS = {"skewed": ["default/a", "default/b", "default/c"]}


def test_uniform_spread_100_100_100():
    tests = spread_tests(from_rows(synthetic_rows())).set_index("service")
    web = tests.loc["web"]
    assert (web["requests"], web["answered"], web["endpoints"], web["chi2"], web["dof"]) == (300, 300, 3, 0.0, 2)
    assert web["p_value"] == pytest.approx(1.0) and web["uniform"] == "yes"


def test_skewed_spread_300_0_0_with_the_endpoints_that_never_answered():
    frame = from_rows(synthetic_rows())
    spread = load_spread(frame, ENDPOINTS)
    skewed = spread[spread["service"] == "skewed"]
    assert skewed["endpoint"].tolist() == ["default/a", "default/b", "default/c"]
    assert skewed["requests"].tolist() == [300, 0, 0] and skewed["share"].tolist() == [1.0, 0.0, 0.0]
    test = spread_tests(frame, ENDPOINTS).set_index("service").loc["skewed"]
    assert test["chi2"] == pytest.approx(600.0) and test["dof"] == 2
    assert test["p_value"] == pytest.approx(math.exp(-300.0), rel=1e-9)  # chi2(2) sf is exp(-x/2)
    assert test["uniform"] == "no"
    # without the endpoint list only one endpoint is known: the test does not apply
    assert spread_tests(frame).set_index("service").loc["skewed", "uniform"] == "n/a"


def test_unanswered_requests_are_counted_apart():
    rows = [
        row(
            step="s",
            src_name="a",
            dst_name="",
            service="web",
            service_port=80,
            communication="pod-to-service",
            answered_by=f"default/{x}",
        )
        for x in "ab"
    ]
    rows.append(
        row(
            step="s",
            src_name="a",
            dst_name="",
            service="web",
            service_port=80,
            communication="pod-to-service",
            outcome="timeout",
        )
    )
    test = spread_tests(from_rows(rows)).iloc[0]
    assert (test["requests"], test["answered"], test["unanswered"], test["endpoints"]) == (3, 2, 1, 2)


def test_no_services_no_spread():
    frame = from_rows(synthetic_rows(with_services=False))
    assert load_spread(frame).empty and spread_tests(frame).empty
    assert spread_tests(from_rows([])).empty


def test_endpoints_from_plan():
    plan = {
        "pods": [{"name": "b", "namespace": "default", "ip": "10.244.1.3"}],
        "services": [
            {"name": "skewed", "namespace": "default", "endpoints": [{"pod": "a"}, {"ip": "10.244.1.3"}, "default/c"]},
            {"name": "other", "namespace": "prod", "endpoints": ["x"]},
            "junk",
        ],
    }
    assert endpoints_from_plan(plan) == {"skewed": ["default/a", "default/b", "default/c"], "prod/other": ["prod/x"]}
    assert endpoints_from_plan({}) == {} and endpoints_from_plan({"services": "x"}) == {}


def test_endpoints_from_endpointslices_in_the_plan():
    """The shape of ServicesPlan.to_dict(): slices with endpoints naming their pod; not-ready ones left out."""
    plan = {
        "pods": [{"name": "b", "namespace": "default", "ip": "10.244.1.3"}],
        "services": {
            "services": [],
            "slices": [
                {
                    "namespace": "default",
                    "name": "web-abc12",
                    "service": "web",
                    "ports": [],
                    "endpoints": [
                        {"ip": "10.244.1.2", "node": "n1", "pod": "a", "ready": True},
                        {"ip": "10.244.1.3", "node": "n1", "pod": "", "ready": True},
                        {"ip": "10.244.2.2", "node": "n2", "pod": "c", "ready": False},
                    ],
                },
                {
                    "namespace": "prod",
                    "name": "api-x",
                    "service": "api",
                    "ports": [],
                    "endpoints": [{"ip": "10.244.2.9", "node": "n2", "pod": "api-1"}],
                },
            ],
        },
    }
    assert endpoints_from_plan(plan) == {"prod/api": ["prod/api-1"], "web": ["default/a", "default/b"]}


@pytest.mark.parametrize(
    "a, x, q",
    [
        (1.0, 0.5, math.exp(-0.5)),  # Q(1, x) = e^-x
        (5.0, 2.0, math.exp(-2.0) * (1 + 2 + 2 + 4 / 3 + 2 / 3)),  # integer a: Poisson tail
        (0.5, 0.1, math.erfc(math.sqrt(0.1))),  # Q(1/2, x) = erfc(sqrt x)
        (0.5, 9.0, math.erfc(3.0)),
        (10.0, 30.0, math.exp(-30) * sum(30**k / math.factorial(k) for k in range(10))),
    ],
)
def test_regularized_gamma_without_scipy(a, x, q):
    assert stats.regularized_upper_gamma(a, x) == pytest.approx(q, rel=1e-10, abs=1e-300)


def test_chi2_sf_known_values(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ImportError("no scipy here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    assert stats.chi2_sf(0.0, 3) == 1.0
    assert stats.chi2_sf(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-9)  # the 95% quantile, 1 dof
    assert stats.chi2_sf(5.991464547107979, 2) == pytest.approx(0.05, rel=1e-9)
    assert stats.chi2_sf(18.307038053275146, 10) == pytest.approx(0.05, rel=1e-9)
    with pytest.raises(ValueError):
        stats.chi2_sf(1.0, 0)


def test_chisquare_edge_cases():
    assert chisquare_uniform([100, 100, 100]).uniform() == "yes"
    assert chisquare_uniform([300, 0, 0]).uniform() == "no"
    assert chisquare_uniform([110, 95, 95]).p_value == pytest.approx(math.exp(-0.75))  # chi2 = 1.5, 2 dof
    assert chisquare_uniform([5]).uniform() == "n/a" and chisquare_uniform([0, 0]).uniform() == "n/a"
    assert chisquare_uniform([]).uniform() == "n/a"


def test_endpoints_keyed_by_step_apply_to_that_step_only():
    """plan.json is the final plan: its endpoints must not turn an earlier step's spread into zeros."""

    def svc_row(step, pod):
        return row(
            step=step,
            src_name="a",
            dst_name="",
            service="web",
            service_port=80,
            communication="pod-to-service",
            answered_by=f"default/{pod}",
        )

    frame = from_rows([svc_row("before", "ab"[i % 2]) for i in range(300)] + [svc_row("after", "a")] * 300)
    from testbed.analysis.spread import last_steps

    assert last_steps(frame) == {"web": "after"}
    final = {("after", "web"): ["default/a", "default/b", "default/c"]}
    tests = spread_tests(frame, final).set_index("step")
    assert (tests.loc["before", "endpoints"], tests.loc["before", "uniform"]) == (2, "yes")
    assert (tests.loc["after", "endpoints"], tests.loc["after", "uniform"]) == (3, "no")
