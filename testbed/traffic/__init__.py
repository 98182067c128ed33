"""testbed/traffic."""
