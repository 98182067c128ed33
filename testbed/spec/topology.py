"""Load a topology file: a kind Cluster config plus an optional testbed document.

First stage of the pipeline for the cluster (spec/ -> plan/). The kind document
(kind.x-k8s.io/v1alpha4, kind Cluster) is decoded strictly; kind fields that configure
container images or kubeadm are accepted with a note that they do not apply to an
emulation. The testbed document (testbed/v1alpha1, kind TestbedConfig) says what kind
does not: the underlay subnet (or several subnets, "racks", joined by a router), the per-node
pod CIDR size, the routing mode (host-gw, cloud-routes, vxlan, bgp) and its options, external hosts.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from ..errors import Problem, UnsupportedError
from . import dualstack, ipv6, kube_proxy_config, node_labels, underlay6, v6first
from .decode import Doc, Problems, load_documents
from .labels import check_labels
from .model import (
    BGP_TOPOLOGIES,
    KUBE_PROXY_MODES,
    PROTOCOLS,
    ROUTING_MODES,
    BgpOptions,
    ClusterSpec,
    ContainerPort,
    ExternalHost,
    NodeSpec,
    Taint,
    UnderlaySubnet,
    VxlanOptions,
)
from .names import dns1123_label_error, dns1123_subdomain_error, label_key_error, label_value_error

KIND_API = "kind.x-k8s.io/v1alpha4"
TESTBED_API = "testbed/v1alpha1"
CONTROL_PLANE_TAINT = Taint("node-role.kubernetes.io/control-plane", "", "NoSchedule")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

# kind fields that only configure containers, images or kubeadm: accepted, noted, ignored.
_KIND_IGNORED = (
    "featureGates",
    "runtimeConfig",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
    "containerdConfigPatches",
    "containerdConfigPatchesJSON6902",
)
_NODE_IGNORED = ("image", "extraMounts", "extraPortMappings", "kubeadmConfigPatches", "kubeadmConfigPatchesJSON6902")
_NET_IGNORED = ("apiServerPort", "apiServerAddress", "dnsSearch", "disableDefaultCNI")


def load_topology(path: str) -> ClusterSpec:
    """Read, decode and validate a topology file; raise SpecError with every problem."""
    problems = Problems()
    kind_doc: Doc | None = None
    testbed_doc: Doc | None = None
    for index, raw in load_documents(path):
        doc = Doc(raw, path, problems, document=f"document {index + 1}")
        if not doc.is_mapping():
            continue
        api, kind = raw.get("apiVersion"), raw.get("kind")
        if kind == "Cluster" and api == KIND_API:
            if kind_doc is not None:
                doc.error("a second kind Cluster document; a topology file holds one")
            kind_doc = doc
        elif kind == "TestbedConfig" and api == TESTBED_API:
            if testbed_doc is not None:
                doc.error("a second TestbedConfig document; a topology file holds one")
            testbed_doc = doc
        else:
            doc.error(
                f"unknown kind {kind!r} with apiVersion {api!r}: a topology holds a "
                f"{KIND_API} Cluster and optionally a {TESTBED_API} TestbedConfig"
            )
    if kind_doc is None:
        problems.add(Problem(path, "", f"no kind Cluster document (apiVersion {KIND_API})"))
        problems.raise_if_any()
    assert kind_doc is not None  # raise_if_any() raised otherwise
    spec = _decode(kind_doc, testbed_doc, path)
    problems.raise_if_any()
    _validate(spec, problems)
    problems.raise_if_any()
    return spec


def _decode(kdoc: Doc, tdoc: Doc | None, path: str) -> ClusterSpec:
    kdoc.document = "kind Cluster"
    kdoc.check_keys(("kind", "apiVersion", "name", "nodes", "networking"), _KIND_IGNORED)
    # kubeadmConfigPatches' node-labels are applied (spec/node_labels.py); the rest is noted.
    init, join, other = node_labels.patch_labels(kdoc.field("kubeadmConfigPatches"))
    notes = [
        f"{k}: not applicable to an emulated cluster, ignored"
        for k in _KIND_IGNORED
        if isinstance(kdoc.value, dict) and k in kdoc.value and (k != "kubeadmConfigPatches" or not (init or join))
    ]
    if (init or join) and other:
        notes.append("kubeadmConfigPatches: node-labels applied, the rest is not applicable, ignored")
    name = kdoc.str("name", default="kind")
    if name and dns1123_label_error(name):
        kdoc.error(dns1123_label_error(name) or "", "name")

    roles: list[tuple[str, dict[str, str], Doc]] = []
    for ndoc in kdoc.items("nodes"):
        if not ndoc.is_mapping():
            continue
        ndoc.check_keys(("role", "labels"), _NODE_IGNORED)
        own_init, own_join, own_other = node_labels.patch_labels(ndoc.field("kubeadmConfigPatches"))
        for k in _NODE_IGNORED:
            if k in ndoc.value and (k != "kubeadmConfigPatches" or not (own_init or own_join)):
                notes.append(f"{ndoc.path}.{k}: not applicable to an emulated node, ignored")
        if (own_init or own_join) and own_other:
            notes.append(f"{ndoc.path}.kubeadmConfigPatches: node-labels applied, the rest is not applicable, ignored")
        role = ndoc.str("role", default="control-plane")
        if role not in ("control-plane", "worker"):
            ndoc.error(f"role must be control-plane or worker, got {role!r}", "role")
        labels = ndoc.string_map("labels")
        check_labels(ndoc.field("labels"), labels)
        # kubelet's --node-labels first, then the node's `labels` (kind passes both to kubelet).
        bootstrap = role == "control-plane" and not any(r == "control-plane" for r, _, _ in roles)
        patched = {**(init if bootstrap else join), **(own_init if bootstrap else own_join)}
        roles.append((role, {**patched, **labels}, ndoc))
    if not roles and not kdoc.problems:
        roles.append(("control-plane", dict(init), kdoc))  # kind's default: one control-plane node
    elif roles and not any(role == "control-plane" for role, _, _ in roles):
        kdoc.error("must have at least one control-plane node", "nodes")

    net = kdoc.mapping("networking")
    pod_subnet, service_subnet, proxy_mode = "10.244.0.0/16", "10.96.0.0/16", "iptables"
    dual: dict[str, Any] = {}  # the IPv6 half of a dual-stack cluster (spec/dualstack.py)
    if net is not None:
        net.check_keys(("ipFamily", "podSubnet", "serviceSubnet", "kubeProxyMode"), _NET_IGNORED)
        for k in _NET_IGNORED:
            if k in net.value:
                notes.append(f"networking.{k}: the testbed is the CNI and the API server; ignored")
        family = net.str("ipFamily", default="ipv4") or "ipv4"
        _check_family(family, net, path)
        pod_subnet = net.str("podSubnet", default=pod_subnet)
        service_subnet = net.str("serviceSubnet", default=service_subnet)
        if family == "dual" and not kdoc.problems:  # issue 15: kind's per-family pairs
            pod_subnet, pod_v6, pod_problems = dualstack.split_pair(
                pod_subnet or "", "networking.podSubnet", family, dualstack.DEFAULT_POD_SUBNET_V6, path
            )
            service_subnet, svc_v6, svc_problems = dualstack.split_pair(
                service_subnet or "", "networking.serviceSubnet", family, dualstack.DEFAULT_SERVICE_SUBNET_V6, path
            )
            kdoc.problems.extend(pod_problems + svc_problems)
            dual = {"ip_family": family, "pod_subnet_v6": pod_v6, "service_subnet_v6": svc_v6}
            if not (pod_problems or svc_problems):  # IPv6 first: the IPv6-primary cluster (spec/v6first.py)
                primary, order_problems = v6first.primary_family(
                    path, net.str("podSubnet", default="") or "", net.str("serviceSubnet", default="") or ""
                )
                kdoc.problems.extend(order_problems)
                dual |= {"primary_family": primary} if primary == "IPv6" else {}
        elif family == "ipv6" and not kdoc.problems:  # issue 15: IPv6 is the primary (only) family
            pod_subnet, pod_problems = ipv6.single(
                net.value.get("podSubnet"), "networking.podSubnet", dualstack.DEFAULT_POD_SUBNET_V6, path
            )
            service_subnet, svc_problems = ipv6.single(
                net.value.get("serviceSubnet"),
                "networking.serviceSubnet",
                dualstack.DEFAULT_SERVICE_SUBNET_V6,
                path,
            )
            kdoc.problems.extend(pod_problems + svc_problems)
            dual = {"ip_family": family}
        elif not kdoc.problems:
            for value, field in ((pod_subnet, "networking.podSubnet"), (service_subnet, "networking.serviceSubnet")):
                kdoc.problems.extend(dualstack.split_pair(value or "", field, family, "", path)[2])
        proxy_mode = net.str("kubeProxyMode", default=proxy_mode)
        if proxy_mode == "ipvs":
            raise UnsupportedError(
                [
                    Problem(
                        path,
                        "networking.kubeProxyMode",
                        "'ipvs': this kernel has no IPVS module; use iptables or nftables",
                        "kind Cluster",
                    )
                ]
            )
        if proxy_mode not in KUBE_PROXY_MODES:
            net.error(f"must be one of {', '.join(KUBE_PROXY_MODES)}, got {proxy_mode!r}", "kubeProxyMode")

    # A KubeProxyConfiguration patch configures the emulated kube-proxy (spec/kube_proxy_config.py).
    kube_proxy, foreign = kube_proxy_config.from_patches(kdoc.field("kubeadmConfigPatches"), proxy_mode or "iptables")
    if kube_proxy is not None:
        notes = [n for n in notes if not n.startswith("kubeadmConfigPatches:")]
        if foreign:
            notes.append("kubeadmConfigPatches: KubeProxyConfiguration applied, the rest is not applicable, ignored")
    opts = _decode_testbed(tdoc) if tdoc is not None else {}
    if dual.get("ip_family") == "ipv6":  # the IPv6 ranges are the primary ones (spec/ipv6.py)
        under_doc = tdoc.value.get("underlay") if tdoc is not None and isinstance(tdoc.value, dict) else None
        given = under_doc.get("subnet") if isinstance(under_doc, dict) else None
        given = given if isinstance(given, str) else None
        v4_given = given is not None and ":" not in given
        if tdoc is not None and isinstance(under_doc, dict) and v4_given and "subnetIPv6" not in under_doc:
            tdoc.error(
                f"{(given or '')[:40]!r}: an ipFamily ipv6 cluster's underlay is IPv6 (underlay.subnetIPv6, "
                f"default {dualstack.DEFAULT_UNDERLAY_V6})",
                "underlay.subnet",
            )
        if opts.get("underlay_subnets"):  # racks: each subnet's cidrIPv6, else its (IPv6) cidr
            opts["underlay_subnets"] = ipv6.racks_v6(opts["underlay_subnets"])
            given = opts["underlay_subnets"][0].cidr
        dual = ipv6.primary_fields(pod_subnet or "", service_subnet or "", given, opts)
        pod_subnet, service_subnet = dual.pop("pod_subnet"), dual.pop("service_subnet")
    if not dual:
        opts.pop("underlay_subnet_v6", None)
        opts.pop("node_cidr_prefix_v6", None)
        if opts.get("underlay_subnets"):  # a rack's cidrIPv6 is dual-stack only: dropped here too
            opts["underlay_subnets"] = tuple(dataclasses.replace(s, cidr_v6="") for s in opts["underlay_subnets"])
    elif dual.get("ip_family") == "dual" and opts.get("underlay_subnets"):
        # racks: the first rack's IPv6 segment is the underlay's
        opts["underlay_subnet_v6"] = underlay6.first_segment(opts["underlay_subnets"], dualstack.DEFAULT_UNDERLAY_V6)
    notes += opts.pop("routing_notes", [])
    overrides: dict[str, str] = opts.pop("pod_cidrs", {})
    racks: dict[str, str] = opts.pop("racks", {})
    extra_taints: dict[str, tuple[Taint, ...]] = opts.pop("node_taints", {})
    named = _name_nodes(name or "kind", roles)
    zoned = bool(opts.get("underlay_subnets"))
    first_rack = opts["underlay_subnets"][0].name if zoned else ""
    nodes = tuple(
        NodeSpec(
            n.name,
            n.role,
            {**n.labels, **node_labels.zone_labels(name or "kind", racks.get(n.name) or first_rack)}
            if zoned
            else n.labels,
            n.taints + extra_taints.pop(n.name, ()),
            overrides.pop(n.name, None),
            racks.pop(n.name, ""),
        )
        for n in named
    )
    for unknown in {**overrides, **racks, **extra_taints}:
        tdoc.error(f"no node named {unknown!r} (nodes: {', '.join(n.name for n in nodes)})", "nodes")  # type: ignore[union-attr]
    return ClusterSpec(
        name=name or "kind",
        file=path,
        nodes=nodes,
        pod_subnet=pod_subnet or "",
        service_subnet=service_subnet or "",
        kube_proxy_mode=proxy_mode or "iptables",
        notes=tuple(notes),
        kube_proxy=kube_proxy,
        **dual,
        **opts,
    )


def _check_family(family: str, net: Doc, path: str) -> None:
    """ipv4, ipv6 (spec/ipv6.py) and dual are built."""
    if family not in dualstack.FAMILIES:
        net.error(f"must be one of {', '.join(dualstack.FAMILIES)}, got {family!r}", "ipFamily")


def _name_nodes(cluster: str, roles: list[tuple[str, dict[str, str], Doc]]) -> list[NodeSpec]:
    """kind's node names: <cluster>-control-plane, -control-plane2, -worker, -worker2, ..."""
    out: list[NodeSpec] = []
    counts = {"control-plane": 0, "worker": 0}
    has_workers = any(role == "worker" for role, _, _ in roles)
    for role, labels, _ in roles:
        counts[role] = counts.get(role, 0) + 1
        suffix = "" if counts[role] == 1 else str(counts[role])
        node_name = f"{cluster}-{role}{suffix}"
        all_labels = node_labels.kubelet_labels(node_name, role)
        taints: tuple[Taint, ...] = ()
        if role == "control-plane":
            # kind removes the control-plane taint when there are no workers to schedule on.
            taints = (CONTROL_PLANE_TAINT,) if has_workers else ()
        all_labels.update(labels)
        out.append(NodeSpec(node_name, role, all_labels, taints))
    return out


def _taints(ndoc: Doc) -> tuple[Taint, ...]:
    """A node's taints, as `kubectl taint` would add them ({key, value, effect})."""
    out: list[Taint] = []
    for tdoc in ndoc.items("taints"):
        if not tdoc.is_mapping():
            continue
        tdoc.check_keys(("key", "value", "effect"))
        key, value = tdoc.str("key", required=True), tdoc.str("value", default="") or ""
        effect = tdoc.str("effect", required=True)
        err = (label_key_error(key) if key else None) or label_value_error(value)
        if err:
            tdoc.error(err, "key" if key and label_key_error(key) else "value")
        elif effect is not None and effect not in TAINT_EFFECTS:
            tdoc.error(f"must be one of {', '.join(TAINT_EFFECTS)}, got {effect[:40]!r}", "effect")
        elif key and effect and any((t.key, t.effect) == (key, effect) for t in out):
            tdoc.error(f"duplicate taint {key}:{effect}", "key")
        elif key and effect:
            out.append(Taint(key, value, effect))
    return tuple(out)


def _decode_testbed(doc: Doc) -> dict[str, Any]:
    doc.document = "TestbedConfig"
    doc.check_keys(
        (
            "apiVersion",
            "kind",
            "underlay",
            "podCIDRPrefix",
            "podCIDRPrefixIPv6",
            "routing",
            "mtu",
            "allowOverlappingPodCIDRs",
            "nodes",
            "externalHosts",
            "bgp",
            "vxlan",
            "advertiseServiceSubnet",
        )
    )
    opts: dict[str, Any] = {}
    under = doc.mapping("underlay")
    if under is not None:
        opts.update(_decode_underlay(under))
    opts["node_cidr_prefix"] = doc.int("podCIDRPrefix", default=24, minimum=8, maximum=30)
    if "podCIDRPrefixIPv6" in doc.value:  # dual-stack only: dropped for an IPv4 cluster
        opts["node_cidr_prefix_v6"] = doc.int("podCIDRPrefixIPv6", minimum=1, maximum=128)
    routing = doc.str("routing", default="host-gw")
    if routing not in ROUTING_MODES:
        doc.error(f"must be one of {', '.join(ROUTING_MODES)}, got {routing!r}", "routing")
    opts["routing"] = routing
    notes: list[str] = []
    bgp = doc.mapping("bgp")
    if bgp is not None:
        opts["bgp"] = _decode_bgp(bgp)
        if routing != "bgp":
            notes.append(f"bgp: ignored, routing is {routing}")
    vxlan = doc.mapping("vxlan")
    if vxlan is not None:
        vxlan.check_keys(("vni", "port"))
        opts["vxlan"] = VxlanOptions(
            vni=vxlan.int("vni", default=1, minimum=0, maximum=2**24 - 1),
            port=vxlan.int("port", default=8472, minimum=1, maximum=65535),
        )
        if routing != "vxlan":
            notes.append(f"vxlan: ignored, routing is {routing}")
    opts["routing_notes"] = notes
    opts["mtu"] = doc.int("mtu", default=1500, minimum=576, maximum=9000)
    # as Calico's BGPConfiguration serviceClusterIPs: the Service range routed from outside
    opts["advertise_service_subnet"] = doc.bool("advertiseServiceSubnet", default=False)
    opts["allow_overlapping_pod_cidrs"] = doc.bool("allowOverlappingPodCIDRs", default=False)
    cidrs: dict[str, str] = {}
    racks: dict[str, str] = {}
    taints: dict[str, tuple[Taint, ...]] = {}
    for ndoc in doc.items("nodes"):
        if not ndoc.is_mapping():
            continue
        ndoc.check_keys(("name", "podCIDR", "rack", "taints"))
        node_name, cidr, rack = ndoc.str("name", required=True), ndoc.str("podCIDR"), ndoc.str("rack")
        if node_name and cidr:
            cidrs[node_name] = cidr
        if node_name and rack:
            racks[node_name] = rack
        node_taints = _taints(ndoc)
        if node_name and node_taints:
            taints[node_name] = node_taints
    opts["pod_cidrs"] = cidrs
    opts["node_taints"] = taints
    opts["racks"] = racks
    hosts = []
    for hdoc in doc.items("externalHosts"):
        if not hdoc.is_mapping():
            continue
        hdoc.check_keys(("name", "ip", "rack", "ports"))
        host_name = hdoc.str("name", required=True)
        if host_name and dns1123_label_error(host_name):
            hdoc.error(dns1123_label_error(host_name) or "", "name")
        ports = []
        for pdoc in hdoc.items("ports"):
            if not pdoc.is_mapping():
                continue
            pdoc.check_keys(("port", "protocol", "name"))
            number = pdoc.int("port", required=True, minimum=1, maximum=65535)
            proto = pdoc.str("protocol", default="TCP") or "TCP"
            if proto not in PROTOCOLS:
                pdoc.error(f"must be one of {', '.join(PROTOCOLS)}, got {proto!r}", "protocol")
            elif number is not None:
                ports.append(ContainerPort(number, proto, pdoc.str("name", default="") or ""))
        hosts.append(ExternalHost(host_name or "", hdoc.str("ip"), hdoc.str("rack", default="") or "", tuple(ports)))
    opts["external_hosts"] = tuple(hosts)
    return opts


def _decode_underlay(under: Doc) -> dict[str, Any]:
    """`subnet` (one L2 segment, the default) or `subnets` (racks joined by a router)."""
    under.check_keys(("subnet", "firstHost", "subnets", "subnetIPv6"))
    opts: dict[str, Any] = {}
    if "subnetIPv6" in under.value:  # dual-stack only: dropped for an IPv4 cluster
        opts["underlay_subnet_v6"] = under.str("subnetIPv6")
    first_host = under.int("firstHost", default=2, minimum=1)
    opts["first_node_host"] = first_host
    if "subnets" in under.value and "subnet" in under.value:
        under.error("give either subnet (one L2 segment) or subnets (racks joined by a router), not both")
    if "subnets" in under.value and "subnetIPv6" in under.value:
        under.error("with subnets (racks), give each subnet its cidrIPv6", "subnetIPv6")
    if "subnets" not in under.value:
        opts["underlay_subnet"] = under.str("subnet", default="192.168.1.0/24")
        return opts
    subnets = []
    for sdoc in under.items("subnets", required=True):
        if not sdoc.is_mapping():
            continue
        sdoc.check_keys(("name", "cidr", "firstHost", "outside", "cidrIPv6"))
        name, cidr = sdoc.str("name", required=True), sdoc.str("cidr", required=True)
        if name and dns1123_label_error(name):
            sdoc.error(dns1123_label_error(name) or "", "name")
        host = sdoc.int("firstHost", default=first_host, minimum=1)
        outside = sdoc.bool("outside", default=False)
        cidr_v6 = sdoc.str("cidrIPv6", default="") or ""  # dual-stack only (spec/underlay6.py)
        if name and cidr:
            subnets.append(UnderlaySubnet(name, cidr, host, bool(outside), cidr_v6))
    if "subnets" in under.value and not under.value["subnets"]:
        under.error("expected at least one subnet", "subnets")
    if subnets:
        opts["underlay_subnets"] = tuple(subnets)
        opts["underlay_subnet"] = subnets[0].cidr
        opts["first_node_host"] = subnets[0].first_host
    return opts


def _decode_bgp(bgp: Doc) -> BgpOptions:
    bgp.check_keys(("asNumber", "topology", "routeReflectors", "holdTime"))
    topology = bgp.str("topology", default="full-mesh")
    if topology not in BGP_TOPOLOGIES:
        bgp.error(f"must be one of {', '.join(BGP_TOPOLOGIES)}, got {topology!r}", "topology")
    reflectors = []
    for rdoc in bgp.items("routeReflectors"):
        if isinstance(rdoc.value, str):
            reflectors.append(rdoc.value)
        else:
            rdoc.error("expected a node name")
    if reflectors and topology != "route-reflector":
        bgp.error("routeReflectors needs topology: route-reflector", "routeReflectors")
    return BgpOptions(
        as_number=bgp.int("asNumber", default=64512, minimum=1, maximum=2**32 - 1),
        topology=topology or "full-mesh",
        route_reflectors=tuple(reflectors),
        hold_time=bgp.int("holdTime", default=30, minimum=3, maximum=65535),  # BGP's bounds (RFC 4271)
    )


def _network(
    value: str, field: str, spec: ClusterSpec, problems: Problems, doc: str
) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        problems.add(Problem(spec.file, field, f"{value!r} is not a valid network: {exc}", doc))
        return None
    if net.version != 4 and spec.ip_family != "ipv6":
        problems.add(Problem(spec.file, field, f"{value!r}: only IPv4 is emulated", doc))
        return None
    if net.version != 6 and spec.ip_family == "ipv6":  # spec/ipv6.py: no IPv4 in an IPv6 cluster
        problems.add(Problem(spec.file, field, f"{value!r}: an ipFamily ipv6 cluster's ranges are IPv6", doc))
        return None
    for special, what in _UNUSABLE:
        if net.overlaps(special):
            problems.add(
                Problem(
                    spec.file,
                    field,
                    f"{net} overlaps {special} ({what}): it cannot be given to interfaces or routed",
                    doc,
                )
            )
            return None
    return net


# Ranges no emulated interface may use: the kernel treats them specially (issue 11: a podSubnet
# in 127.0.0.0/8 passed and showed up as "NAT violations", 224.0.0.0/16 failed in the kernel).
_UNUSABLE = tuple(
    (ipaddress.IPv4Network(n), what)
    for n, what in (
        ("0.0.0.0/8", "'this network', unspecified"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved, broadcast"),
    )
)
# The cluster's own Services take the 1st (kubernetes) and 10th (kube-dns) address of serviceSubnet.
_MAX_SERVICE_PREFIX = 28


def _validate(spec: ClusterSpec, problems: Problems) -> None:
    """Cross-field checks: subnets valid and disjoint, room for every node and host."""
    f = spec.file
    if spec.ip_family == "ipv6":  # spec/ipv6.py: what is not built yet, then the IPv6 ranges
        problems.extend(
            ipv6.refusals(f, spec.routing, spec.kube_proxy_mode, len(spec.subnets()), spec.advertise_service_subnet)
        )
        ranges = dualstack.check_v6(
            f,
            spec.pod_subnet,
            spec.service_subnet,
            spec.underlay_subnet,
            spec.node_cidr_prefix,
            len(spec.nodes),
            "host-gw",
            1,
        )
        problems.extend(ranges)
        if problems:
            return  # the checks below would repeat the ranges' problems
    if spec.ip_family == "dual":
        problems.extend(
            dualstack.check_v6(
                f,
                spec.pod_subnet_v6,
                spec.service_subnet_v6,
                spec.underlay_subnet_v6,
                spec.node_cidr_prefix_v6,
                len(spec.nodes),
                spec.routing,
                len(spec.subnets()),
                spec.kube_proxy_mode,
            )
        )
        if spec.primary_family == "IPv6":
            problems.extend(v6first.refusals(f, len(spec.subnets()), spec.advertise_service_subnet))
        if spec.underlay_subnets:
            problems.extend(
                underlay6.check_racks_v6(
                    f,
                    spec.underlay_subnets,
                    (
                        ("networking.podSubnet", spec.pod_subnet_v6),
                        ("networking.serviceSubnet", spec.service_subnet_v6),
                    ),
                )
            )
    pods = _network(spec.pod_subnet, "networking.podSubnet", spec, problems, "kind Cluster")
    svcs = _network(spec.service_subnet, "networking.serviceSubnet", spec, problems, "kind Cluster")
    if svcs is not None and svcs.prefixlen > (ipv6.MAX_SERVICE_PREFIX_V6 if svcs.version == 6 else _MAX_SERVICE_PREFIX):
        problems.add(
            Problem(
                f,
                "networking.serviceSubnet",
                f"{svcs} is too small: the cluster's own Services "
                f"take its 1st and 10th addresses (kubernetes, kube-dns); use a "
                f"/{ipv6.MAX_SERVICE_PREFIX_V6 if svcs.version == 6 else _MAX_SERVICE_PREFIX} or larger",
                "kind Cluster",
            )
        )
    racks = {s.name: s for s in spec.subnets()}
    unders: dict[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = {}  # rack -> (network, field)
    for sub in spec.subnets():
        label = f"underlay.subnets[{sub.name}].cidr" if spec.underlay_subnets else "underlay.subnet"
        net = _network(sub.cidr, label, spec, problems, "TestbedConfig")
        if net is not None:
            unders[sub.name] = (net, label)
    if len(racks) != len(spec.subnets()):
        problems.add(Problem(f, "underlay.subnets", "duplicate subnet names", "TestbedConfig"))
    nets = [
        (n, label, doc)
        for n, label, doc in (
            (pods, "networking.podSubnet", "kind Cluster"),
            (svcs, "networking.serviceSubnet", "kind Cluster"),
            *((n, label, "TestbedConfig") for n, label in unders.values()),
        )
        if n is not None
    ]
    for i, (a, la, da) in enumerate(nets):
        for b, lb, _ in nets[i + 1 :]:
            if a.overlaps(b):
                problems.add(Problem(f, la, f"{a} overlaps {lb} {b}", da))
    if pods is not None and spec.node_cidr_prefix < pods.prefixlen:
        problems.add(
            Problem(f, "podCIDRPrefix", f"/{spec.node_cidr_prefix} is larger than podSubnet {pods}", "TestbedConfig")
        )
    elif pods is not None and 2 ** (spec.node_cidr_prefix - pods.prefixlen) < len(spec.nodes):
        problems.add(
            Problem(
                f,
                "networking.podSubnet",
                f"{pods} holds fewer /{spec.node_cidr_prefix} node CIDRs than the {len(spec.nodes)} nodes",
                "kind Cluster",
            )
        )
    explicit: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
    for node in spec.nodes:
        if dns1123_subdomain_error(node.name):
            problems.add(Problem(f, "name", dns1123_subdomain_error(node.name) or "", "kind Cluster"))
        if racks.get(spec.rack_of(node)) is not None and racks[spec.rack_of(node)].outside:
            problems.add(
                Problem(
                    f,
                    f"nodes[{node.name}].rack",
                    f"{spec.rack_of(node)!r} is the outside world: nodes sit in the cluster's own subnets",
                    "TestbedConfig",
                )
            )
        if node.rack and node.rack not in racks:
            problems.add(
                Problem(
                    f,
                    f"nodes[{node.name}].rack",
                    f"no underlay subnet named {node.rack!r} (subnets: {', '.join(racks)})",
                    "TestbedConfig",
                )
            )
        if node.pod_cidr is None:
            continue
        cidr = _network(node.pod_cidr, f"nodes[{node.name}].podCIDR", spec, problems, "TestbedConfig")
        if cidr is not None and pods is not None and not (cidr.version == pods.version and cidr.subnet_of(pods)):  # type: ignore[arg-type]
            problems.add(
                Problem(f, f"nodes[{node.name}].podCIDR", f"{cidr} is outside podSubnet {pods}", "TestbedConfig")
            )
        if cidr is None:
            continue
        for other, ocidr in explicit:
            if cidr.overlaps(ocidr) and not spec.allow_overlapping_pod_cidrs:
                problems.add(
                    Problem(
                        f,
                        f"nodes[{node.name}].podCIDR",
                        f"{cidr} overlaps {ocidr} of node "
                        f"{other} (set allowOverlappingPodCIDRs: true to demonstrate the "
                        "clash)",
                        "TestbedConfig",
                    )
                )
        explicit.append((node.name, cidr))
    router = spec.needs_router()
    taken: dict[str, str] = {}
    for sub in spec.subnets():
        if sub.name not in unders:
            continue
        under, label = unders[sub.name]
        members = [n for n in spec.nodes if spec.rack_of(n) == sub.name]
        needed = sub.first_host + len(members)
        if needed > under.num_addresses - 1:
            problems.add(
                Problem(
                    f,
                    label,
                    f"{under} has no room for {len(members)} nodes from host .{sub.first_host}",
                    "TestbedConfig",
                )
            )
        if router and sub.first_host < 2:
            problems.add(
                Problem(
                    f,
                    label.rsplit(".", 1)[0] + ".firstHost" if spec.underlay_subnets else "underlay.firstHost",
                    f"the underlay router takes .1 of {under}: nodes must start at .2 or later",
                    "TestbedConfig",
                )
            )
        taken.update({str(under.network_address + sub.first_host + i): f"node {n.name}" for i, n in enumerate(members)})
        if router:
            taken.setdefault(str(under.network_address + 1), "the underlay router")
    for host in spec.external_hosts:
        field = f"externalHosts[{host.name}]"
        if host.rack and host.rack not in racks:
            problems.add(
                Problem(
                    f,
                    f"{field}.rack",
                    f"no underlay subnet named {host.rack!r} (subnets: {', '.join(racks)})",
                    "TestbedConfig",
                )
            )
            continue
        if host.ip is None:
            continue
        try:
            ip = ipaddress.ip_address(host.ip)
        except ValueError:
            problems.add(Problem(f, f"{field}.ip", f"{host.ip!r} is not an IP address", "TestbedConfig"))
            continue
        allowed = [unders[host.rack]] if host.rack in unders else list(unders.values())
        inside = [n for n, _ in allowed if ip in n and ip not in (n.network_address, n.broadcast_address)]
        if not inside and allowed:
            where = (
                f"the underlay {allowed[0][0]}"
                if len(allowed) == 1
                else "any underlay subnet (" + ", ".join(str(n) for n, _ in allowed) + ")"
            )
            if host.rack and spec.underlay_subnets:
                where = f"rack {host.rack}'s subnet {allowed[0][0]}"
            problems.add(Problem(f, f"{field}.ip", f"{ip} is not a host address of {where}", "TestbedConfig"))
        elif str(ip) in taken:
            problems.add(Problem(f, f"{field}.ip", f"{ip} is already the address of {taken[str(ip)]}", "TestbedConfig"))
        else:
            taken[str(ip)] = f"external host {host.name}"
    if spec.routing == "bgp":
        names = {n.name for n in spec.nodes}
        for i, name in enumerate(spec.bgp.route_reflectors):
            if name not in names:
                problems.add(
                    Problem(
                        f,
                        f"bgp.routeReflectors[{i}]",
                        f"no node named {name!r} (nodes: {', '.join(n.name for n in spec.nodes)})",
                        "TestbedConfig",
                    )
                )
    if router and any(h.name == "router" for h in spec.external_hosts):
        problems.add(
            Problem(f, "externalHosts[router].name", "the name 'router' is the underlay router's", "TestbedConfig")
        )
    seen: set[str] = set()
    for host in spec.external_hosts:
        if host.name in seen or host.name in {n.name for n in spec.nodes}:
            problems.add(
                Problem(f, f"externalHosts[{host.name}].name", f"duplicate name {host.name!r}", "TestbedConfig")
            )
        seen.add(host.name)
