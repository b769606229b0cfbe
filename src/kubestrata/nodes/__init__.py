"""Worker nodes: the CIS Amazon EKS node benchmark (section 3, as kube-bench checks it), an interpreter
of kube-bench's check-file format, and safe age-based node rotation.

Modules: ``audit`` (a node's or the cluster's audit as findings), ``benchmarks`` (the built-in EKS
benchmark versions, as kube-bench controls), ``host`` (the auditors: native readers of /proc and the
file system, or a shell for user check files), ``kbformat/`` (the check-file interpreter),
``rotate/`` (the rotation plan and its execution). Text output is kubestrata.report.nodes."""
