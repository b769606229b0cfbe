"""Identity paths kubestrata runs itself: the IAM authenticator (TokenReview for ``k8s-aws-v1.`` tokens),
the Pod Identity agent (container credentials), and IRSA's OIDC discovery and trust-policy lint."""
