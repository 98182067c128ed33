"""testbed/plan."""
