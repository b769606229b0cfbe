"""`kubestrata serve`: Cedar authorization, admission (Cedar, PSS, best-practice checks, safe fixes)
and audit ingestion in one HTTPS server. See docs/serve.md."""

from kubestrata.server.app import ServerState, create_app
from kubestrata.server.config import FileConfig, ServeConfig, load_serve_config

__all__ = ["FileConfig", "ServeConfig", "ServerState", "create_app", "load_serve_config"]
