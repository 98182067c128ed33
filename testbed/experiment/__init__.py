"""testbed/experiment."""
