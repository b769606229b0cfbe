"""The kubestrata command line: thin commands that parse, call an engine and render."""
