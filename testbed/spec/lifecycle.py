"""A pod's lifecycle fields, decoded strictly (pure; spec/, issue 19).

What kubelet reads to decide when a container is Ready and how it stops: the containers'
readinessProbe, livenessProbe and startupProbe (httpGet, tcpSocket, grpc or exec, with their
periods and thresholds, defaults as core/v1 sets them), `lifecycle.preStop` (sleep, exec,
httpGet), the pod's terminationGracePeriodSeconds and readinessGates. testbed/lifecycle/
turns them into times; nothing here touches the network.
"""

from __future__ import annotations

from dataclasses import dataclass

from .decode import Doc

MAX_SECONDS = 86_400  # a day: bounds every period, delay and grace period (issue 11: bound every input)
PROBE_KINDS = ("httpGet", "tcpSocket", "grpc", "exec")
_PROBE_TIMING = (
    "initialDelaySeconds",
    "timeoutSeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
    "terminationGracePeriodSeconds",
)
_HANDLER_FIELDS = {
    "httpGet": ("port",),
    "tcpSocket": ("port",),
    "grpc": ("port",),
    "exec": (),
}
_HANDLER_IGNORED = {
    "httpGet": ("path", "host", "scheme", "httpHeaders"),
    "tcpSocket": ("host",),
    "grpc": ("service",),
    "exec": ("command",),
}


@dataclass(frozen=True)
class Probe:
    """One probe of one container: how it asks, and core/v1's timing defaults."""

    kind: str  # httpGet | tcpSocket | grpc | exec
    port: int | str = 0  # a number or a container port name; 0 for exec
    initial_delay: int = 0
    period: int = 10
    timeout: int = 1
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class PreStop:
    """lifecycle.preStop: `sleep` seconds, or an exec / httpGet hook (run at once: the testbed
    runs no container image, so a hook takes no time beyond its sleep)."""

    kind: str  # sleep | exec | httpGet
    seconds: int = 0  # sleep's duration


@dataclass(frozen=True)
class PodLifecycle:
    """The lifecycle of one pod template, from all its containers."""

    readiness: tuple[Probe, ...] = ()
    liveness: tuple[Probe, ...] = ()
    startup: tuple[Probe, ...] = ()
    pre_stop: tuple[PreStop, ...] = ()
    grace_period: int = 30  # terminationGracePeriodSeconds (core/v1 default)
    readiness_gates: tuple[str, ...] = ()  # conditionType of each readinessGates entry

    @property
    def pre_stop_seconds(self) -> int:
        """How long the longest preStop hook keeps the pod's containers running (they run in parallel)."""
        return max((h.seconds for h in self.pre_stop), default=0)


def _probe(doc: Doc) -> Probe | None:
    if not doc.is_mapping():
        return None
    doc.check_keys(PROBE_KINDS + _PROBE_TIMING)
    kinds = [k for k in PROBE_KINDS if doc.field(k).present()]
    if len(kinds) != 1:
        doc.error(f"must have exactly one of {', '.join(PROBE_KINDS)}")
        return None
    kind = kinds[0]
    handler = doc.mapping(kind)
    port: int | str = 0
    if handler is not None:
        handler.check_keys(_HANDLER_FIELDS[kind], _HANDLER_IGNORED[kind])
        if kind != "exec":
            port = _port(handler)
    timing = {
        "initial_delay": doc.int("initialDelaySeconds", default=0, minimum=0, maximum=MAX_SECONDS),
        "period": doc.int("periodSeconds", default=10, minimum=1, maximum=MAX_SECONDS),
        "timeout": doc.int("timeoutSeconds", default=1, minimum=1, maximum=MAX_SECONDS),
        "success_threshold": doc.int("successThreshold", default=1, minimum=1, maximum=1000),
        "failure_threshold": doc.int("failureThreshold", default=3, minimum=1, maximum=1000),
    }
    return Probe(kind, port, **timing)


def _port(handler: Doc) -> int | str:
    node = handler.field("port")
    if not node.present():
        handler.error("required field is missing", "port")
        return 0
    if isinstance(node.value, str) and not isinstance(node.value, bool):
        return str(node.value)
    value = handler.int("port", required=True, minimum=1, maximum=65535)
    return value if isinstance(value, int) else 0


def _pre_stop(doc: Doc) -> PreStop | None:
    if not doc.is_mapping():
        return None
    doc.check_keys(("sleep", "exec", "httpGet"), ("tcpSocket",))
    kinds = [k for k in ("sleep", "exec", "httpGet", "tcpSocket") if doc.field(k).present()]
    if len(kinds) != 1:
        doc.error("must have exactly one of sleep, exec, httpGet")
        return None
    if kinds[0] == "sleep":
        sleep = doc.mapping("sleep")
        if sleep is None:
            return None
        sleep.check_keys(("seconds",))
        seconds = sleep.int("seconds", required=True, minimum=0, maximum=MAX_SECONDS)
        return PreStop("sleep", seconds if isinstance(seconds, int) else 0)
    handler = doc.mapping(kinds[0])
    if handler is not None and kinds[0] != "tcpSocket":
        handler.check_keys(_HANDLER_FIELDS[kinds[0]], _HANDLER_IGNORED[kinds[0]])
    return PreStop(kinds[0])


def decode_lifecycle(spec: Doc) -> PodLifecycle:
    """The lifecycle of a PodSpec `spec` (its containers' probes and hooks, its grace period and
    readiness gates). Problems go to the spec's problem sink, with their field paths."""
    readiness: list[Probe] = []
    liveness: list[Probe] = []
    startup: list[Probe] = []
    pre_stop: list[PreStop] = []
    for cdoc in spec.items("containers"):
        if not isinstance(cdoc.value, dict):
            continue  # the container decoder reports it
        for field, out in (("readinessProbe", readiness), ("livenessProbe", liveness), ("startupProbe", startup)):
            pdoc = cdoc.mapping(field)
            probe = _probe(pdoc) if pdoc is not None else None
            if probe is not None:
                out.append(probe)
        hooks = cdoc.mapping("lifecycle")
        if hooks is not None:
            hooks.check_keys(("preStop",), ("postStart", "stopSignal"))
            hdoc = hooks.mapping("preStop")
            hook = _pre_stop(hdoc) if hdoc is not None else None
            if hook is not None:
                pre_stop.append(hook)
    grace = spec.int("terminationGracePeriodSeconds", default=30, minimum=0, maximum=MAX_SECONDS)
    gates: list[str] = []
    for gdoc in spec.items("readinessGates"):
        if gdoc.is_mapping():
            gdoc.check_keys(("conditionType",))
            ctype = gdoc.str("conditionType", required=True)
            if ctype:
                gates.append(ctype)
    return PodLifecycle(
        tuple(readiness),
        tuple(liveness),
        tuple(startup),
        tuple(pre_stop),
        grace if grace is not None else 30,
        tuple(gates),
    )
