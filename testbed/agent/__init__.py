"""testbed/agent."""
