"""testbed/emu."""
