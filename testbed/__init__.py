"""k8s network emulation testbed: Kubernetes YAML -> a live emulated cluster on Mininet.

Pipeline: spec/ (load, validate) -> plan/ (schedule, IPAM, routes) -> emu/ (the only layer
that touches the kernel) -> traffic/ (probes) -> experiment/ (steps, records, summary).
"""

__version__ = "0.1.0"

#: Prefix of every kernel object (netns names, processes) the testbed creates.
PREFIX = "tb"
