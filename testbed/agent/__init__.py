"""testbed/agent: one process that answers on every declared container port of every pod.

config.py (the JSON file emu/ writes) -> server.py (event loop, reconcile, signals) ->
endpoints.py (TCP/UDP/raw-SCTP sockets) -> reply.py (what is answered; pure) and
sctp_responder.py (userspace SCTP handshake; pure). Run with `python -m testbed.agent`.
"""
