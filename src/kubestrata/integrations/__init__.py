"""Senders to external services (AWS Security Hub); I/O at the edge, formats live in report/."""
