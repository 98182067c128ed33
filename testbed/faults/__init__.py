"""Faults and degraded networks (issue 16): what breaks, where, and how it is undone (pure).

model.py says what a fault is and checks it against a Plan; ops.py turns a fault into the
kernel and control operations that inject it and those that undo it; lifecycle.py is the node
lifecycle controller's sequence (NotReady, endpoints not ready, eviction) as pure re-planning.
emu/faults.py applies them; experiment/ and shell/ name them.
"""
