"""testbed/wire: the bytes the agent and the prober exchange; pure code, no sockets.

Where it sits: the bottom layer (ARCHITECTURE.md). reply.py is the agent's reply format and
sctp.py the userspace SCTP codec; the agent (agent/) writes both and the prober (traffic/) reads
both, so they live below both and neither imports the other.
"""
