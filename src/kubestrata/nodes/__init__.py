"""Worker nodes: the CIS Amazon EKS node benchmark (section 3, as kube-bench checks it), an interpreter
of kube-bench's check-file format, and safe age-based node rotation."""
