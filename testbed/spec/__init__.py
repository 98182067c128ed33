"""testbed/spec."""
