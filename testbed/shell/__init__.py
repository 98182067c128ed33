"""The interactive shell of `testbed up`: kubectl's grammar and Mininet's habits.

core (the loop and dispatch), grammar (kubectl words and flags), selectors (-l,
--field-selector), objects (the cluster as kubectl objects), output (tables and -o formats),
describe, kubectl (the verbs), mininet (nodes, net, pingall...), execns (`<name> CMD` in a
namespace), lineedit (readline, completion, history) and live (the one adapter to the live
cluster).
"""

from .core import ClusterShell
from .execns import substitute

__all__ = ["ClusterShell", "substitute"]
