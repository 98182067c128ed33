"""What the figures were measured on: cores, CPU model, memory, kernel, load (Linux /proc)."""

from __future__ import annotations

import os
import platform


def _meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out: dict[str, int] = {}
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts:
                out[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return out


def mem_available() -> int:
    """MemAvailable in bytes (system-wide: other users of the machine move it too)."""
    return _meminfo().get("MemAvailable", 0)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe_machine() -> dict[str, object]:
    """A dict for the JSON results and `machine_line` (the one printed with every figure)."""
    mem = _meminfo()
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": round(mem.get("MemTotal", 0) / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def machine_line(machine: dict[str, object] | None = None) -> str:
    m = machine or describe_machine()
    load = m["loadavg_at_start"]
    first = load[0] if isinstance(load, list) and load else 0.0  # describe_machine's list of three
    return (
        f"machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB RAM, kernel {m['kernel']}, "
        f"Python {m['python']}, load average {first:.2f} at start"
    )
