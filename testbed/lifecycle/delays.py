"""The propagation delays of a change, as settings with upstream's defaults (pure; issue 19).

A change to a pod travels: kubelet (probes, termination) -> API server -> the EndpointSlice
controller (kube-controller-manager) -> every node's kube-proxy, which syncs its rules at most
once per minSyncPeriod. Each hop is a setting here. Where upstream has a flag, the default is
upstream's; where the delay is the cluster's own latency (a watch event's way from the API
server to an informer, a container's start), the default is an estimate and says so.
Times are virtual seconds; `time_scale` is how many real seconds one of them takes when a
change is played on a live cluster (0.1: ten times faster than a real cluster).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..spec.decode import Doc

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
    # kube-controller-manager --node-monitor-grace-period (40s): an unreachable node's pods
    # are marked not Ready this long after its last heartbeat
    node_monitor_grace_period: float = 40.0
    # real seconds per virtual second when played on a live cluster
    time_scale: float = 1.0

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
    "node_monitor_grace_period": "nodeMonitorGracePeriod",
    "time_scale": "timeScale",
}


def decode_delays(doc: Doc) -> Delays:
    """A `lifecycle:` mapping (seconds, numbers >= 0; timeScale in (0, 10]); problems go to doc."""
    doc.check_keys(tuple(YAML_NAMES.values()))
    values: dict[str, float] = {}
    for f in fields(Delays):
        key = YAML_NAMES[f.name]
        node = doc.field(key)
        if not node.present():
            continue
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            node.error("expected a number of seconds")
            continue
        low_ok = value > 0 if f.name == "time_scale" else value >= 0
        high = 10.0 if f.name == "time_scale" else MAX_DELAY
        if not low_ok or value > high:
            node.error(f"{value} is out of range {'(0' if f.name == 'time_scale' else '[0'}, {high:g}]")
            continue
        values[f.name] = float(value)
    return Delays(**values)
