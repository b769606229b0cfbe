"""Generated from api.proto (k8s.io/kms/apis/v2): messages (api_pb2) and the service (api_pb2_grpc)."""
