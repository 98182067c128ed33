"""Spread of Service traffic over its endpoints, with a chi-square uniformity test (pure).

Pipeline: dataset.load_dataset() -> **load_spread(), spread_tests()** -> report/ (bar charts).

Rows with a non-empty `service` column went through a Service; `answered_by` names the pod
(namespace/name) that answered. Per step and Service, requests are counted per endpoint and
tested against a uniform spread (kube-proxy's random choice should spread evenly). An endpoint
that never answered does not show in the rows: pass its name in `endpoints` (or let
endpoints_from_plan() read them from plan.json) so that a 300/0/0 spread counts its zeros.
`endpoints` is keyed by Service (every step) or by (step, Service): plan.json is the plan
after the last step, so the report applies it to each Service's last step only (a Service
scaled between steps has other endpoints before).
Probes that got no answer are counted apart ("unanswered") and left out of the test.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from .dataset import party_label, steps_in_order
from .stats import chisquare_uniform

SPREAD_COLUMNS = ("step", "service", "endpoint", "requests", "share")
TEST_COLUMNS = (
    "step",
    "service",
    "requests",
    "answered",
    "unanswered",
    "endpoints",
    "expected_each",
    "chi2",
    "dof",
    "p_value",
    "uniform",
)


EndpointMap = Mapping[str | tuple[str, str], Sequence[str]] | None


def service_label(name: str, namespace: str) -> str:
    return party_label("service", name, namespace).removesuffix(" (svc)")


def _service_rows(frame: pd.DataFrame) -> pd.DataFrame:
    rows = frame[frame["service"].astype(str) != ""]
    return rows.assign(_svc=[service_label(s, ns) for s, ns in zip(rows["service"], rows["dst_namespace"])])


def _endpoint_set(observed: Iterable[str], step: str, service: str, raw_name: str, endpoints: EndpointMap) -> list[str]:
    known: set[str] = {e for e in observed if e}
    if endpoints:
        keys: tuple[str | tuple[str, str], ...] = (service, raw_name, (step, service), (step, raw_name))
        for key in dict.fromkeys(keys):
            known.update(endpoints.get(key, ()))
    return sorted(known)


def load_spread(frame: pd.DataFrame, endpoints: EndpointMap = None) -> pd.DataFrame:
    """Per step, Service and endpoint: requests answered and their share of the answered ones."""
    rows = _service_rows(frame)
    out = []
    for step in steps_in_order(rows):
        in_step = rows[rows["step"] == step]
        for svc in sorted(set(in_step["_svc"])):
            sub = in_step[in_step["_svc"] == svc]
            answered = sub["answered_by"][sub["answered_by"] != ""]
            counts = answered.value_counts()
            names = _endpoint_set(answered, step, svc, str(sub["service"].iloc[0]), endpoints)
            total = int(counts.sum())
            for ep in names:
                n = int(counts.get(ep, 0))
                out.append(
                    {
                        "step": step,
                        "service": svc,
                        "endpoint": ep,
                        "requests": n,
                        "share": n / total if total else float("nan"),
                    }
                )
    table = pd.DataFrame(out, columns=list(SPREAD_COLUMNS))
    table["requests"] = table["requests"].astype("int64")
    table["share"] = table["share"].astype("float64")
    return table


def spread_tests(frame: pd.DataFrame, endpoints: EndpointMap = None, alpha: float = 0.05) -> pd.DataFrame:
    """Per step and Service: requests, endpoints, chi-square statistic, p-value, uniform yes/no/n/a."""
    rows = _service_rows(frame)
    spread = load_spread(frame, endpoints)
    out = []
    for step in steps_in_order(rows):
        in_step = rows[rows["step"] == step]
        for svc in sorted(set(in_step["_svc"])):
            sub = in_step[in_step["_svc"] == svc]
            counts = spread[(spread["step"] == step) & (spread["service"] == svc)]["requests"].tolist()
            test = chisquare_uniform(counts)
            answered = int(sum(counts))
            out.append(
                {
                    "step": step,
                    "service": svc,
                    "requests": len(sub),
                    "answered": answered,
                    "unanswered": len(sub) - answered,
                    "endpoints": len(counts),
                    "expected_each": test.expected,
                    "chi2": test.statistic,
                    "dof": test.dof,
                    "p_value": test.p_value,
                    "uniform": test.uniform(alpha),
                }
            )
    table = pd.DataFrame(out, columns=list(TEST_COLUMNS))
    for col in ("requests", "answered", "unanswered", "endpoints", "dof"):
        table[col] = table[col].astype("int64")
    for col in ("expected_each", "chi2", "p_value"):
        table[col] = table[col].astype("float64")
    return table


def _slices(plan: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """EndpointSlices in plan.json, top level or under `services` (ServicesPlan.to_dict())."""
    services = plan.get("services")
    found = plan.get("slices") or (services.get("slices") if isinstance(services, Mapping) else None) or []
    return [s for s in found if isinstance(s, Mapping)] if isinstance(found, list) else []


def last_steps(frame: pd.DataFrame) -> dict[str, str]:
    """Service (as labelled here) -> the last step that probed it."""
    rows = _service_rows(frame)
    return {svc: step for step, svc in zip(rows["step"], rows["_svc"])}


def endpoints_from_plan(plan: Mapping[str, Any]) -> dict[str, list[str]]:
    """Service -> endpoint pods (namespace/name) from plan.json, if it lists them.

    Reads EndpointSlices (namespace, service, endpoints with pod or ip; not-ready endpoints are
    left out), or a `services` list whose items carry `endpoints` given as "ns/name" or "name"
    strings, or as objects with pod/name, namespace or ip (an ip is mapped to its pod through
    the plan's pods). Anything else is ignored: the spread then relies on the endpoints that
    answered.
    """
    if not isinstance(plan, Mapping):
        return {}
    by_ip = {
        str(p.get("ip")): f"{p.get('namespace', 'default')}/{p.get('name')}"
        for p in plan.get("pods", [])
        if isinstance(p, Mapping) and p.get("ip")
    }
    out: dict[str, set[str]] = {}
    for sl in _slices(plan):
        ns, svc_name = str(sl.get("namespace") or "default"), sl.get("service")
        if not svc_name:
            continue
        found = out.setdefault(service_label(str(svc_name), ns), set())
        for ep in sl.get("endpoints") or []:
            if not isinstance(ep, Mapping) or ep.get("ready") is False:
                continue
            if ep.get("pod"):
                found.add(f"{ns}/{ep['pod']}")
            elif str(ep.get("ip")) in by_ip:
                found.add(by_ip[str(ep["ip"])])
    services = plan.get("services")
    for svc in services if isinstance(services, list) else []:
        if not isinstance(svc, Mapping) or not svc.get("name"):
            continue
        ns = str(svc.get("namespace") or "default")
        names = out.setdefault(service_label(str(svc["name"]), ns), set())
        for ep in svc.get("endpoints") or []:
            if isinstance(ep, str):
                names.add(ep if "/" in ep else by_ip.get(ep, f"{ns}/{ep}"))
            elif isinstance(ep, Mapping):
                pod = ep.get("pod") or ep.get("name")
                if pod:
                    names.add(str(pod) if "/" in str(pod) else f"{ep.get('namespace') or ns}/{pod}")
                elif ep.get("ip") and str(ep["ip"]) in by_ip:
                    names.add(by_ip[str(ep["ip"])])
    return {svc: sorted(names) for svc, names in sorted(out.items()) if names}
