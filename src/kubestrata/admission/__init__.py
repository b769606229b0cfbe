"""Admission webhooks' engine: AdmissionReview v1 in and out (review), an injectable handler
registry with a declared failure mode (registry), the built-in handlers (Cedar forbids, Pod Security
Standards by namespace labels, best-practice checks as warnings, safe fixes as JSON patches) and the
namespace labels they read. The HTTPS server that mounts it is kubestrata.server."""
