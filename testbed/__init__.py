"""k8s network emulation testbed: Kubernetes YAML -> a live emulated cluster on Mininet.

Pipeline: spec/ (load, validate) -> plan/ (schedule, IPAM, routes) -> emu/ (the only layer
that touches the kernel) -> traffic/ (probes) -> experiment/ (steps, records, summary).
"""

__version__ = "0.1.0"  # the one place: setup.cfg reads it (version = attr: testbed.__version__)

#: Prefix of every kernel object (netns names, processes) the testbed creates.
PREFIX = "tb"
