"""Every renderer of every command, one module per format or per view, reading the one Finding and the
engines' result types: scan output (table, JSON, SARIF 2.1.0, JUnit XML, HTML, PolicyReport, ASFF),
and the views of pss, netpol, access, migrate, detect, images and nodes. Engines return data and
never import this package or rich; data is escaped where it enters the text (kubestrata.textsafe)."""
