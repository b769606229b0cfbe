"""An interpreter of kube-bench's check-file format (controls / groups / checks / tests).

Semantics follow kube-bench's documentation (docs/controls.md) and behaviour (check/check.go,
check/test.go, aquasecurity/kube-bench, 2026-06), re-implemented here:

* a check runs ``audit_env``, ``audit`` and ``audit_config``; each test item looks for its ``flag`` in
  the audit output first, then for its ``path`` (a Kubernetes JSONPath) in the ``audit_config``
  output (JSON, else YAML), then for its ``env`` in the ``audit_env`` output: the first source that
  has the keyword decides (so command-line flags take precedence over the config file);
* ``set`` (default true): the keyword must be present, and then ``compare`` applies; ``set: false``:
  the keyword must be absent (compare ignored);
* compare ops eq, noteq (booleans case-insensitive), gt/gte/lt/lte (integers), has, nothave, regex,
  valid_elements (comma-separated subset), bitmask (octal permissions no wider than the value);
* ``bin_op`` and (default) / or across test items; ``use_multiple_values``: every output line must pass;
* ``type: skip`` -> INFO, ``type: manual`` -> WARN; a failing unscored check is WARN, not FAIL.

The engine is pure: audit commands are run by an *auditor* given by the caller (a shell for user
check files, native readers of /proc and the file system for kubestrata's built-in benchmar

Modules: ``model`` (the check-file model and the result types), ``parse`` (a check file as that
model), ``jsonpath`` (client-go JSONPath and Go's printing of values), ``evaluate`` (test items and
compare ops over audit output), ``run`` (checks and controls over an auditor), ``output`` (kube-bench's
``--json`` document).
"""
