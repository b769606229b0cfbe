"""Renderers for scan results: table, JSON, SARIF 2.1.0, JUnit XML, HTML."""
