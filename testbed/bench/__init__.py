"""Benchmarks of issue 7 (scale and speed), importable so that `testbed bench` can run them.

Part of the shell side (it builds real clusters through emu/). Modules: machine (what the
figures were measured on), memory (PSS of the testbed's processes), workloads (generated
topologies and manifests), mininet_baseline (plain Mininet hosts, for the ratio), scale (one
point of the build/teardown/memory curve), changes (time to enforce a change at scale,
checked with real packets), probing (truth table, all-pairs), targets (the issue's targets
and the table of figures), suite (what `testbed bench` runs).
"""
