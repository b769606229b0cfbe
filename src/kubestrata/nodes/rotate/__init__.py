"""Age-based node rotation: the plan (pure) and its execution against a live API server.

Plan: nodes older than ``--max-age``, oldest first, one (node group, zone) batch at a time and one node
in flight, never taking a group below its minimum healthy count. Nodes that Karpenter NodePools with
``expireAfter`` or EKS Auto Mode already rotate are reported and left alone. For every node the plan lists
the pods to evict (DaemonSet and mirror pods stay, as ``kubectl drain`` leaves them) and the
PodDisruptionBudgets that govern them, with how many disruptions each allows now; a budget that can
never allow one (``minAvailable`` equal to its pods, ``maxUnavailable: 0``) blocks the node.

Execution, per node: annotate and cordon; evict each pod through the Eviction API (policy/v1) -- a 429
(the budget does not allow it yet) waits and retries, other errors retry too, and a pod that cannot be
evicted within the eviction timeout stops the run there (it never skips ahead, never deletes a pod);
wait until the evicted pods are gone; delete the Node object; wait until the group has its ready count
back (replacement capacity). Progress lives on the nodes themselves (annotation
``kubestrata.io/rotation``), so a rerun resumes nodes already cordoned or drained before starting others.

Modules: ``model`` (what the plan reads of Nodes, Pods and PodDisruptionBudgets, and the plan itself),
``planning`` (the plan from a cluster's objects), ``execute`` (reading a live cluster and carrying a
plan out). The plan as text is report/nodes.py's ``rotation_plan_text``.
"""
