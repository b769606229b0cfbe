"""Who can do what on an EKS cluster: the aws-auth ConfigMap as the authenticator parses it, access
entries and access policies as data, principals mapped to Kubernetes users (model), effective
permissions and who-can, attack paths, and aws-auth -> access entries migration plans. The EKS
snapshot these read is kubestrata.eks; RBAC semantics are kubestrata.rbac."""
