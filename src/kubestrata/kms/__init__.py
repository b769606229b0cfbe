"""The KMS v2 plugin for Kubernetes Secrets encryption: the gRPC service over a Unix socket
(service; apis/v2 is generated from k8s.io/kms's api.proto), key backends (a local keyring, AWS KMS),
a client for `kms status`, and rewrapping every Secret after a key rotation."""
