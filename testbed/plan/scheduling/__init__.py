"""kube-scheduler's default profile, as far as the testbed models a cluster (pure).

Part of plan/: plan/scheduler.py is its front door (used by plan/build.py). Filters in
kube-scheduler's order — TaintToleration, NodeAffinity, PodTopologySpread, InterPodAffinity —
then scores with the default weights (TaintToleration 3, NodeAffinity 2, PodTopologySpread 2,
InterPodAffinity 2, NodeResourcesFit 1), ties to the earlier node. terms.py resolves a pod's
constraints, index.py indexes placed pods by label, node and term, nodes.py holds the node
plugins, spread.py and interpod.py the two pod-aware plugins, framework.py runs them and words
a Pending pod's reason as kube-scheduler's FitError does, evictions.py is the taint manager.
"""
