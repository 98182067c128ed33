"""The agent's configuration file: which pod namespaces to serve, and on which container ports.

Where it sits: emu/ writes this JSON file from the Plan (one entry per emulated pod) and starts the
agent on it; after a change it rewrites the file and sends SIGHUP. This module only reads and
checks the file; agent/server.py turns it into sockets.

    {"pods": [{"netns": "/run/netns/tb-x-default_web-1", "pod": "web-1", "namespace": "default",
               "node": "kind-worker", "ip": "10.244.1.2",
               "ports": [{"container": "nginx", "name": "http", "port": 80, "protocol": "TCP"}]}]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from testbed.plan.pod import PortPlan
from testbed.wire.reply import PortIdentity

PROTOCOLS = ("TCP", "UDP", "SCTP")


class ConfigError(ValueError):
    """The configuration file cannot be used; the message lists every problem found."""


@dataclass(frozen=True)
class PodConfig:
    """One namespace the agent serves: a pod's, or an external host's (namespace "external").
    Its ports are the planned pod's own (plan/pod.py's PortPlan)."""

    netns: str
    pod: str
    namespace: str
    node: str
    ip: str
    ports: tuple[PortPlan, ...]
    ip6: str = ""  # dual-stack (issue 15): its TCP and UDP ports are served on IPv6 too

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.pod}"

    def identity(self, port: PortPlan) -> PortIdentity:
        return PortIdentity(self.pod, self.namespace, self.node, port.container, port.protocol, port.port)


@dataclass(frozen=True)
class AgentConfig:
    pods: tuple[PodConfig, ...]


def _text(obj: dict[str, Any], key: str, where: str, problems: list[str], required: bool = True) -> str:
    value = obj.get(key, "" if not required else None)
    if not isinstance(value, str) or (required and not value):
        problems.append(f"{where}.{key}: expected a non-empty string, got {value!r}")
        return ""
    return value


def parse_config(data: object, source: str = "config") -> AgentConfig:
    """Check the decoded JSON and build the config; all problems are reported at once."""
    problems: list[str] = []
    if not isinstance(data, dict) or not isinstance(data.get("pods"), list):
        raise ConfigError(f"{source}: expected an object with a list 'pods'")
    pods = []
    for i, raw in enumerate(data["pods"]):
        where = f"{source}: pods[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected an object")
            continue
        ports = []
        raw_ports = raw.get("ports", [])
        if not isinstance(raw_ports, list):
            problems.append(f"{where}.ports: expected a list")
            raw_ports = []
        for j, rp in enumerate(raw_ports):
            pwhere = f"{where}.ports[{j}]"
            if not isinstance(rp, dict):
                problems.append(f"{pwhere}: expected an object")
                continue
            port = rp.get("port")
            if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
                problems.append(f"{pwhere}.port: expected an integer 1-65535, got {port!r}")
                continue
            protocol = rp.get("protocol", "TCP")
            if protocol not in PROTOCOLS:
                problems.append(f"{pwhere}.protocol: expected one of {PROTOCOLS}, got {protocol!r}")
                continue
            ports.append(
                PortPlan(
                    container=_text(rp, "container", pwhere, problems),
                    name=_text(rp, "name", pwhere, problems, required=False),
                    port=port,
                    protocol=protocol,
                )
            )
        pods.append(
            PodConfig(
                _text(raw, "netns", where, problems),
                _text(raw, "pod", where, problems),
                _text(raw, "namespace", where, problems),
                _text(raw, "node", where, problems, required=False),
                _text(raw, "ip", where, problems, required=False),
                tuple(ports),
                _text(raw, "ip6", where, problems, required=False),
            )
        )
    if problems:
        raise ConfigError("\n".join(problems))
    return AgentConfig(tuple(pods))


def load_config(path: str) -> AgentConfig:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    return parse_config(data, path)
