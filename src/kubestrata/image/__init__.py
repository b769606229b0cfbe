"""Container images: reading them (registry, OCI layout, docker save), their package inventory,
their vulnerabilities, and which workloads run them."""
