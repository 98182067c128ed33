"""Kubernetes' node timers and the time scale, in one place (pure; issue 16 and 19).

Both the fault injector (a node-down: emu/faults.py) and the lifecycle simulation (a node that
stops heartbeating: lifecycle/sim.py) read these; an experiment sets them under `timers:` (or,
the same values, `nodeMonitorGracePeriod` and `timeScale` under `lifecycle:`; the shell: `fault
timers`).

- node_monitor_grace_period: kube-controller-manager --node-monitor-grace-period (40 s): a node
  whose kubelet has not reported for this long is NotReady (condition Unknown), tainted
  node.kubernetes.io/unreachable, and its pods are marked not Ready (their endpoints too).
- toleration_seconds: --default-unreachable-toleration-seconds (300 s; its sibling
  --default-not-ready-toleration-seconds has the same default, and a stopped node is
  unreachable, not NotReady-and-reporting): the NoExecute toleration the DefaultTolerationSeconds
  admission plugin gives every pod, so the taint manager evicts them that long after the taint.
- time_scale: **real seconds per Kubernetes second** when a timer or a delay is played on a live
  cluster: 0.02 turns 40 s into 0.8 s, 0.25 plays a rollout four times faster. Every timer of
  Kubernetes' control plane and every propagation delay (lifecycle/delays.py) is scaled by it;
  the kernel's and bird's own timers (BGP hold time, conntrack) are not.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timers:
    """Kubernetes' node timers (upstream defaults), in seconds, and the time scale."""

    node_monitor_grace_period: float = 40.0
    toleration_seconds: float = 300.0
    time_scale: float = 1.0

    def scaled(self, seconds: float) -> float:
        """Kubernetes seconds -> real seconds on a live cluster."""
        return seconds * self.time_scale


# YAML names (camelCase) -> fields
TIMER_KEYS = {
    "nodeMonitorGracePeriod": "node_monitor_grace_period",
    "tolerationSeconds": "toleration_seconds",
    "timeScale": "time_scale",
}


def check_timers(timers: Timers) -> list[tuple[str, str]]:
    """(YAML name, message) for each timer out of its range; [] when all are fine."""
    out = []
    for name, value, top in (
        ("nodeMonitorGracePeriod", timers.node_monitor_grace_period, 3600.0),
        ("tolerationSeconds", timers.toleration_seconds, 86400.0),
    ):
        if not 0 <= value <= top:
            out.append((name, f"expected seconds in [0, {top:g}], got {value:g}"))
    if not 0 < timers.time_scale <= 1:
        out.append(("timeScale", f"expected a factor in (0, 1], got {timers.time_scale:g}"))
    longest = timers.node_monitor_grace_period + timers.toleration_seconds
    if timers.scaled(longest) > 600:
        out.append(
            ("timeScale", f"a node failure would take {timers.scaled(longest):.0f} s: at most 600 s once scaled")
        )
    return out
