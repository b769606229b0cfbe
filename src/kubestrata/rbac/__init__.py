"""Kubernetes RBAC with the API server's semantics; shared by access analysis and the Cedar converter."""

from kubestrata.rbac.evaluator import (
    Attributes,
    Decision,
    PolicyRule,
    RBACAuthorizer,
    UserInfo,
    service_account_user,
)

__all__ = ["Attributes", "Decision", "PolicyRule", "RBACAuthorizer", "UserInfo", "service_account_user"]
