"""Network reachability: NetworkPolicy v1, AdminNetworkPolicy / BaselineAdminNetworkPolicy,
ClusterNetworkPolicy tiers and AWS Security Groups for Pods, evaluated over pod equivalence classes.

Entry points: ``engine.Network(cluster, options)`` (queries, the full map, explain steps),
``connlist.connections`` (workload-level list), ``analysis`` (eval, explain text, exposure,
coverage, diff), ``graph`` (dot, HTML connectivity view). User guide: docs/netpol.md.
"""
