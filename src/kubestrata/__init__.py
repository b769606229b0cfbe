"""kubestrata: layered Kubernetes security (cluster, infrastructure, application)."""

__version__ = "0.1.0"
