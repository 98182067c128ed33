"""Upstream kube-proxy's packet-flow tests, replayed over the testbed's rules (kubeproxy/, pure).

The cases are language-neutral data (tests/upstream/kube_proxy_flows.yaml, read from
kubernetes/kubernetes pkg/proxy/nftables/proxier_test.go, with iptables/proxier_test.go's
answers where that mode differs and its own flows marked iptables-only): per upstream test function, its
Services and EndpointSlices, and per flow the source, destination, port, protocol and upstream's
answer (the DNAT targets and whether the source is masqueraded, REJECT, DROP, or "" when
kube-proxy leaves the packet alone).

`replay` turns one case into a ServicesPlan (what the API server and the EndpointSlice
controller would hold), builds the ruleset kube-proxy in each mode programs on upstream's fake
node (`test-node`, 192.168.0.2, pod CIDR 10.0.0.0/8, serviceCIDR 172.30.0.0/16) and follows
each flow through the rule tracer (rules/tracer.py) with upstream's rules of thumb: a source
that is one of the node's addresses is sent by the node (output hook), a source in the pod CIDR
comes from a pod, anything else from outside.

A case of `family: IPv6` (upstream's NewFakeProxier(v1.IPv6Protocol): TestNodePorts' ipv6
variants) runs on the data's `environment_ipv6` instead: node 2001:db8::1, pod CIDR
fd00:10::/64, serviceCIDR fd00:10:96::/112; its rules are the IPv6 proxier's (`ip6 kube-proxy`,
or the iptables rules ip6tables would hold).

A flow whose `needs` names a feature the testbed lacks is not run but counted under that
feature; `pure_features()` says what exists, by looking (a case's `config` is a
KubeProxyConfiguration fragment: it runs once `build_ruleset` takes a `config` argument;
localhost NodePorts once iptables mode answers one).
"""

from __future__ import annotations

import inspect
import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..plan.service_model import (
    EndpointPlan,
    EndpointPortPlan,
    EndpointSlicePlan,
    ServicePlan,
    ServicePortPlan,
    ServicesPlan,
)
from ..rules import Packet, Ruleset, Trace, trace
from ..spec.decode import Doc, Problems
from ..spec.kube_proxy_config import KubeProxyConfig
from ..spec.kube_proxy_config import decode as decode_config

#: Features the pure replay has without further work: the plan model and both renderers hold
#: externalIPs, several LoadBalancer addresses and source ranges; the tracer takes extra local
#: addresses (a secondary node IP) and any source address.
PURE_FEATURES = frozenset({"external-ips", "several-lb-addresses", "source-is-lb-address", "secondary-node-address"})
#: A secondary node address listed by nodePortAddresses: nodes here have one address (the harness
#: adds this need; the data never names it).
NODE_PORT_ADDRESSES_ON_SECONDARY = "secondary-node-address-in-nodePortAddresses"
#: Every feature a case may need (the data may name no other).
FEATURES = PURE_FEATURES | {"kube-proxy-config", "localhost-node-ports"}


def pure_features() -> frozenset[str]:
    """What the pure replay can run now, by looking: `kube-proxy-config` when the builders take
    a configuration, `localhost-node-ports` when iptables mode DNATs 127.0.0.1:<NodePort>."""
    from . import build_ruleset  # the package's entry point (a late import: this module is in it)

    extra = {"kube-proxy-config"} if "config" in inspect.signature(build_ruleset).parameters else set()
    if _localhost_node_ports():
        extra.add("localhost-node-ports")
    return PURE_FEATURES | extra


def _localhost_node_ports() -> bool:
    """Does iptables mode answer a NodePort on 127.0.0.1 (upstream's route_localnet rules)?"""
    env = {"node": "n", "node_ip": "192.168.0.2", "node_ips": ["192.168.0.2"], "pod_cidr": "10.0.0.0/8"}
    case = {
        "services": [
            {
                "namespace": "a",
                "name": "b",
                "type": "NodePort",
                "clusterIP": "172.30.0.1",
                "ports": [{"port": 80, "nodePort": 30001}],
            }
        ],
        "slices": [{"namespace": "a", "service": "b", "ports": [{"port": 80}], "endpoints": [{"ip": "10.0.0.9"}]}],
    }
    flow = {"source": "127.0.0.1", "destination": "127.0.0.1", "port": 30001}
    plan = decode_case({**env, "service_cidr": "172.30.0.0/16"}, case)
    # with upstream's defaults (an empty KubeProxyConfiguration: iptables.localhostNodePorts true)
    return bool(run_flow(plan, env, flow, "iptables", None, {}).endpoints())


@dataclass(frozen=True)
class Expected:
    """An answer in upstream's vocabulary: output and masq (masq is None when it does not apply)."""

    output: str  # "ip:port, ..." | REJECT | DROP | "" (untouched)
    masq: bool | None

    def __str__(self) -> str:
        if self.output in ("REJECT", "DROP"):
            return self.output
        if not self.output:
            return "untouched"
        return f"{self.output} ({'masq' if self.masq else 'no masq'})"


@dataclass(frozen=True)
class FlowResult:
    test: str
    flow: str
    mode: str
    status: str  # match | mismatch | needs
    expected: Expected
    got: Expected | None = None
    needs: tuple[str, ...] = ()
    detail: str = ""  # the trace, for a mismatch
    protocol: str = "TCP"

    def line(self) -> str:
        head = f"{self.mode:9} {self.test} / {self.flow}"
        if self.status == "needs":
            return f"{head}: needs {', '.join(self.needs)}"
        if self.status == "match":
            return f"{head}: {self.expected}"
        return f"{head}: upstream {self.expected}, testbed {self.got}"


# -- decoding --------------------------------------------------------------------------------


def _service(d: Mapping[str, Any]) -> ServicePlan:
    ports = tuple(
        ServicePortPlan(
            str(p.get("name", "")),
            int(p["port"]),
            str(p.get("protocol", "TCP")),
            p.get("targetPort", p["port"]),
            p.get("nodePort"),
        )
        for p in d.get("ports", ())
    )
    svc_type = str(d.get("type", "ClusterIP"))
    lb = tuple(d.get("loadBalancerIngress", ()))
    external_ips = tuple(d.get("externalIPs", ()))
    reachable = svc_type in ("NodePort", "LoadBalancer") or bool(external_ips)
    return ServicePlan(
        namespace=str(d["namespace"]),
        name=str(d["name"]),
        type=svc_type,
        cluster_ip=str(d["clusterIP"]),
        ports=ports,
        selector={},
        session_affinity=str(d.get("sessionAffinity", "None")),
        external_traffic_policy=str(d.get("externalTrafficPolicy", "Cluster")) if reachable else "",
        internal_traffic_policy=str(d.get("internalTrafficPolicy", "Cluster")),
        external_ips=external_ips,
        load_balancer_ingress=lb,
        # upstream trims whitespace (a regression test writes " 203.0.113.0/25")
        load_balancer_source_ranges=tuple(str(c).strip() for c in d.get("loadBalancerSourceRanges", ())),
        health_check_node_port=d.get("healthCheckNodePort"),
    )


def _endpoint(d: Mapping[str, Any]) -> EndpointPlan:
    # EndpointSlice API: an unset ready means ready; an unset serving means "= ready"
    ready = bool(d.get("ready", True))
    return EndpointPlan(
        str(d["ip"]),
        str(d.get("node", "")),
        ready=ready,
        serving=bool(d.get("serving", ready)),
        terminating=bool(d.get("terminating", False)),
    )


def _slice(i: int, d: Mapping[str, Any]) -> EndpointSlicePlan:
    ports = tuple(
        EndpointPortPlan(str(p.get("name", "")), int(p["port"]), str(p.get("protocol", "TCP"))) for p in d["ports"]
    )
    eps = tuple(_endpoint(e) for e in d.get("endpoints", ()))
    return EndpointSlicePlan(str(d["namespace"]), f"{d['service']}-{i + 1}", str(d["service"]), ports, eps)


def decode_case(env: Mapping[str, Any], case: Mapping[str, Any]) -> ServicesPlan:
    """The Services and EndpointSlices of one upstream test as a ServicesPlan."""
    return ServicesPlan(
        seed=0,
        service_subnet=str(env["service_cidr"]),
        lb_pool=None,
        services=tuple(_service(s) for s in case.get("services", ())),
        slices=tuple(_slice(i, s) for i, s in enumerate(case.get("slices", ()))),
    )


# -- running ---------------------------------------------------------------------------------


def entry_of(env: Mapping[str, Any], source: str) -> str:
    """Where upstream's flow starts: the node itself, one of its pods, or outside."""
    if source in env["node_ips"] or ipaddress.ip_address(source).is_loopback:
        return "local"
    if ipaddress.ip_address(source) in ipaddress.ip_network(str(env["pod_cidr"])):
        return "pod"
    return "underlay"


def answer(t: Trace) -> Expected:
    """The trace in upstream's vocabulary; a mix of verdicts is written out as such."""
    verdicts = t.verdicts
    if verdicts == {"reject"}:
        return Expected("REJECT", None)
    if verdicts == {"drop"}:
        return Expected("DROP", None)
    if verdicts == {"accept"}:
        return Expected("", None)
    if verdicts == {"dnat"}:
        return Expected(", ".join(sorted(t.endpoints())), t.masqueraded)
    return Expected(" | ".join(sorted(verdicts)), t.masqueraded)


def expected_of(flow: Mapping[str, Any], mode: str = "nftables") -> Expected:
    """Upstream's answer in `mode`: the flow's, or its per-mode override (`iptables: {output: ...}`)."""
    over = flow.get(mode) or {}
    output = str(over.get("output", flow.get("output", "")))
    if output in ("REJECT", "DROP") or not output:
        return Expected(output, None)
    masq = bool(over.get("masq", flow.get("masq", False)))
    return Expected(", ".join(sorted(x.strip() for x in output.split(","))), masq)


Build = Callable[[ServicesPlan, str, str, str, str], Ruleset]


def run_flow(
    plan: ServicesPlan,
    env: Mapping[str, Any],
    flow: Mapping[str, Any],
    mode: str,
    build: Build | None = None,
    config: Mapping[str, Any] | None = None,
) -> Trace:
    """One flow through the rules of upstream's fake node (`build`: kubeproxy.build_ruleset)."""
    if build is None:
        from . import build_ruleset

        build = build_ruleset
    args = (plan, str(env["node"]), str(env["node_ip"]), str(env["pod_cidr"]), mode)
    # a case's KubeProxyConfiguration fragment goes to builders that take one (see pure_features)
    takes = config is not None and "config" in inspect.signature(build).parameters
    rs = build(*args, config=kube_proxy_config(config, mode)) if takes else build(*args)  # type: ignore[call-arg]
    src = str(flow["source"])
    packet = Packet(
        src, str(flow["destination"]), int(flow["port"]), str(flow.get("protocol", "TCP")), entry_of(env, src)
    )
    # the node's other addresses, and lo's (upstream's fake network has 127.0.0.1/8 and ::1 on lo)
    others = [ip for ip in env["node_ips"] if ip != env["node_ip"]] + ["127.0.0.1", "::1"]
    return trace(rs, packet, local_ips=others)


def replay(
    data: Mapping[str, Any],
    modes: Sequence[str],
    features: Iterable[str] | None = None,
    build: Build | None = None,
) -> list[FlowResult]:
    """Every flow of every case in every mode: match, mismatch, or the features it needs."""
    have = frozenset(pure_features() if features is None else features)
    out: list[FlowResult] = []
    for case in data["tests"]:
        env = environment_of(data, case)
        plan = decode_case(env, case)
        case_needs = ("kube-proxy-config",) if case.get("config") else ()
        for flow in case["flows"]:
            proto = str(flow.get("protocol", "TCP"))
            wanted = set(case_needs) | set(flow.get("needs", ()))
            if case.get("config") and "secondary-node-address" in wanted:
                # the tracer takes a secondary address, but the testbed's KubeProxyConfiguration
                # matches nodePortAddresses against a node's primary address and 127.0.0.1 only
                wanted.add(NODE_PORT_ADDRESSES_ON_SECONDARY)
            needs = tuple(sorted(wanted - have))
            for mode in modes:
                if mode not in flow.get("modes", case.get("modes", modes)):
                    continue
                want = expected_of(flow, mode)
                if needs:
                    out.append(FlowResult(case["name"], flow["name"], mode, "needs", want, needs=needs, protocol=proto))
                    continue
                # upstream's fake proxier runs with upstream's defaults: a case without a fragment
                # is an empty KubeProxyConfiguration, not the testbed's no-document defaults
                config = (case.get("config") or {}) if "kube-proxy-config" in have else None
                t = run_flow(plan, env, flow, mode, build, config)
                got = answer(t)
                status = "match" if got == want else "mismatch"
                out.append(FlowResult(case["name"], flow["name"], mode, status, want, got, (), t.explain(), proto))
    return out


def environment_of(data: Mapping[str, Any], case: Mapping[str, Any]) -> Mapping[str, Any]:
    """The fake node a case runs on: upstream's IPv4 one, or its IPv6 one for `family: IPv6`."""
    env: Mapping[str, Any] = data["environment_ipv6"] if case.get("family") == "IPv6" else data["environment"]
    return env


def summary(results: Sequence[FlowResult]) -> str:
    """`N run and match, M mismatch, K need X` per mode."""
    lines = []
    for mode in sorted({r.mode for r in results}):
        rs = [r for r in results if r.mode == mode]
        parts = [f"{sum(r.status == 'match' for r in rs)} run and match"]
        mism = sum(r.status == "mismatch" for r in rs)
        if mism:
            parts.append(f"{mism} mismatch")
        by_need: dict[str, int] = {}
        for r in rs:
            if r.status == "needs":
                key = " + ".join(r.needs)
                by_need[key] = by_need.get(key, 0) + 1
        parts += [f"{n} need {k}" for k, n in sorted(by_need.items())]
        lines.append(f"{mode}: {len(rs)} flows: " + ", ".join(parts))
    return "\n".join(lines)


def kube_proxy_config(fragment: Mapping[str, Any] | None, mode: str) -> KubeProxyConfig | None:
    """A case's configuration fragment (upstream's test fields: masqueradeAll, detectLocalMode,
    clusterCIDR, nodePortAddresses) as the KubeProxyConfiguration document a topology would hold,
    decoded by spec/kube_proxy_config.py; upstream's masqueradeAll lives under the mode's section."""
    if fragment is None:
        return None
    doc: dict[str, Any] = {k: v for k, v in fragment.items() if k != "masqueradeAll"}
    if "masqueradeAll" in fragment:
        doc[mode] = {"masqueradeAll": fragment["masqueradeAll"]}
    problems = Problems()
    config = decode_config(Doc(doc, "kube_proxy_flows.yaml", problems, "config"), mode)
    problems.raise_if_any()
    return config
