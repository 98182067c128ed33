"""The ingress controller's backends in a dual-stack cluster (issue 15; pure, plan/).

ingress-nginx builds each upstream from every EndpointSlice of the backend Service
(getEndpointsFromSlices loops over all of them, whatever their address type), so a dual-stack
Service's IPv6 endpoints are upstream servers beside its IPv4 ones (`server [addr]:port`), and
nginx proxies to either family. A SingleStack Service has IPv4 slices only: its upstream stays
IPv4. In a single-stack IPv6 cluster every slice is IPv6 already. The controller listens on
[::] as well in both (ingress/nginx.py, IngressPlan.ipv6).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from .model import Plan
from .service_model import ServicesPlan


def with_both_families(plan: Plan) -> ServicesPlan | None:
    """The Services as the controller reads them: their IPv6 EndpointSlices too (dual-stack)."""
    if plan.services is None or plan.dual is None:
        return plan.services
    return dataclasses.replace(plan.services, slices=plan.services.slices + plan.dual.slices(plan.services))


def with_ipv6_backends(plan: Plan, ingresses: Iterable[Any]) -> Plan:
    """`plan` whose ingress configuration lists the IPv6 endpoints of dual-stack backends too."""
    services = with_both_families(plan)
    if plan.ingress is None or plan.dual is None or services is None:
        return plan
    from ..ingress import controller_config  # deferred: every plan passes here, few have an Ingress

    return dataclasses.replace(
        plan, ingress=dataclasses.replace(plan.ingress, config=controller_config(ingresses, services))
    )
