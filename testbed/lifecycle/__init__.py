"""Pod lifecycle in virtual time (pure; issue 19): kubelet's probes and termination, the
EndpointSlice controller and each node's kube-proxy, with upstream's propagation delays.

- delays.py: the delays and periods, as settings with upstream's defaults (and estimates,
  said as such, where upstream has no setting);
- sim.py: a discrete-event simulation of pods (started, Ready, Terminating, preStop, SIGTERM,
  exited, removed), the EndpointSlice controller's writes and every node's kube-proxy syncs
  (BoundedFrequencyRunner: at most one per minSyncPeriod). It says *when* each view changes;
  emu/lifecycle.py makes each change real at that moment (scaled), with real packets flowing.
"""
