"""The propagation delays of a change, as settings with upstream's defaults (pure; issue 19).

A change to a pod travels: kubelet (probes, termination) -> API server -> the EndpointSlice
controller (kube-controller-manager) -> every node's kube-proxy, which syncs its rules at most
once per minSyncPeriod. Each hop is a setting here. Where upstream has a flag, the default is
upstream's; where the delay is the cluster's own latency (a watch event's way from the API
server to an informer, a container's start), the default is an estimate and says so.
Times are virtual seconds (Kubernetes seconds). The node timers and the time scale that plays
them on a live cluster are lifecycle/timers.py's `Timers`, carried here as `timers` (a
`lifecycle:` block may set nodeMonitorGracePeriod and timeScale: the same Timers as `timers:`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields, replace

from ..spec.decode import Doc
from ..spec.kube_proxy_config import KubeProxyConfig
from .timers import TIMER_KEYS, Timers

MAX_DELAY = 3600.0


@dataclass(frozen=True)
class Delays:
    # kube-controller-manager --endpointslice-updates-batch-period (upstream default 0: none)
    endpoint_slice_batch: float = 0.0
    # estimate: a pod's change reaching the EndpointSlice controller's informer, and its write
    endpoint_slice_watch: float = 0.05
    # estimate: an EndpointSlice change reaching a node's kube-proxy informer (watch latency)
    kube_proxy_watch: float = 0.1
    # estimate: how much later the last node sees it than the first (spread evenly over the
    # nodes, in node order), since nodes are not equally close to the API server nor as busy
    kube_proxy_watch_spread: float = 0.2
    # KubeProxyConfiguration iptables.minSyncPeriod / nftables.minSyncPeriod (upstream 1s)
    kube_proxy_min_sync_period: float = 1.0
    # KubeProxyConfiguration syncPeriod (upstream 30s): the periodic full resync
    kube_proxy_sync_period: float = 30.0
    # estimate: a scheduled pod's sandbox and containers started (image present)
    container_start: float = 0.5
    # estimate: the last container exited -> the pod object deleted (kubelet's status manager)
    pod_delete: float = 0.1
    # how long the application takes to exit once it gets SIGTERM (0: at once, as nginx's
    # fast shutdown); bounded by the grace period left, as kubelet's SIGKILL bounds it
    app_shutdown: float = 0.0
    # the node timers and the time scale (lifecycle/timers.py): one place for both issues
    timers: Timers = Timers()

    @property
    def node_monitor_grace_period(self) -> float:
        return self.timers.node_monitor_grace_period

    @property
    def time_scale(self) -> float:
        return self.timers.time_scale

    def flat(self) -> dict[str, float]:
        """Every delay by field name, with the grace period and the time scale (run.json)."""
        out: dict[str, float] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "timers"}
        return {**out, "node_monitor_grace_period": self.node_monitor_grace_period, "time_scale": self.time_scale}

    def kube_proxy_watch_of(self, index: int, count: int) -> float:
        """Node `index` (of `count`)'s watch delay: the base plus its share of the spread."""
        share = index / (count - 1) if count > 1 else 0.0
        return self.kube_proxy_watch + self.kube_proxy_watch_spread * share


# YAML names (camelCase) of the fields, in order
YAML_NAMES = {
    "endpoint_slice_batch": "endpointSliceUpdatesBatchPeriod",
    "endpoint_slice_watch": "endpointSliceWatchDelay",
    "kube_proxy_watch": "kubeProxyWatchDelay",
    "kube_proxy_watch_spread": "kubeProxyWatchSpread",
    "kube_proxy_min_sync_period": "kubeProxyMinSyncPeriod",
    "kube_proxy_sync_period": "kubeProxySyncPeriod",
    "container_start": "containerStartDelay",
    "pod_delete": "podDeleteDelay",
    "app_shutdown": "appShutdownDelay",
}
# the Timers a `lifecycle:` block may set too (the same values as `timers:`)
TIMER_NAMES = ("nodeMonitorGracePeriod", "timeScale")


def decode_delays(doc: Doc) -> Delays:
    """A `lifecycle:` mapping (seconds, numbers >= 0; timeScale in (0, 10]); problems go to doc."""
    doc.check_keys(tuple(YAML_NAMES.values()) + TIMER_NAMES)
    values: dict[str, float] = {}
    timers: dict[str, float] = {}
    for name, key in [*YAML_NAMES.items(), *((TIMER_KEYS[k], k) for k in TIMER_NAMES)]:
        node = doc.field(key)
        if not node.present():
            continue
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            node.error("expected a number of seconds")
            continue
        low_ok = value > 0 if name == "time_scale" else value >= 0
        high = 10.0 if name == "time_scale" else MAX_DELAY
        if not low_ok or value > high:
            node.error(f"{value} is out of range {'(0' if name == 'time_scale' else '[0'}, {high:g}]")
            continue
        (timers if key in TIMER_NAMES else values)[name] = float(value)
    return Delays(**values, timers=Timers(**timers))


def joined(timers: Timers, tdoc: Doc | None, delays: Delays | None, ldoc: Doc | None) -> tuple[Timers, Delays | None]:
    """An experiment's one Timers from its `timers:` block and its `lifecycle:` block's
    nodeMonitorGracePeriod and timeScale (the same settings, two spellings), and its delays
    carrying them. A key set in both blocks to different values is a problem (on ldoc)."""
    if delays is None or ldoc is None:
        return timers, delays
    given = tdoc.value if tdoc is not None and isinstance(tdoc.value, dict) else {}
    values = {}
    for key in TIMER_NAMES:
        name = TIMER_KEYS[key]
        if ldoc.field(key).present():
            mine, theirs = getattr(delays.timers, name), getattr(timers, name)
            if key in given and mine != theirs:
                ldoc.error(f"{mine:g} differs from timers.{key} ({theirs:g}): it is one setting, give it once", key)
            values[name] = mine
    merged = dataclasses.replace(timers, **values)
    return merged, dataclasses.replace(delays, timers=merged)


def with_kube_proxy_periods(delays: Delays, config: KubeProxyConfig | None) -> Delays:
    """The topology's KubeProxyConfiguration syncPeriod / minSyncPeriod (spec/kube_proxy_config.py)
    in place of the periods an experiment's `lifecycle:` leaves at upstream's defaults: one
    setting, read by the lifecycle's kube-proxy model, not a second copy of it."""
    if config is None:
        return delays
    default = Delays()
    out = delays
    if config.sync_period is not None and delays.kube_proxy_sync_period == default.kube_proxy_sync_period:
        out = replace(out, kube_proxy_sync_period=config.sync_period)
    if config.min_sync_period is not None and delays.kube_proxy_min_sync_period == default.kube_proxy_min_sync_period:
        out = replace(out, kube_proxy_min_sync_period=config.min_sync_period)
    return out
