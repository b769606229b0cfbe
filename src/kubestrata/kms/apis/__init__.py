"""Generated gRPC code of the KMS v2 API (k8s.io/kms/apis/v2/api.proto)."""
