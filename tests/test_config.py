"""The config values (kubestrata.config, plain dataclasses) and the file schema (kubestrata.configschema,
pydantic) describe one config: same fields, same defaults; and no file means no pydantic."""

import dataclasses
import subprocess
import sys

import pytest

from kubestrata.config import Config, PrivilegedAllowEntry, PSSExclusion, ScanConfig, load_config
from kubestrata.configschema import ConfigFile, PrivilegedAllowSchema, PSSExclusionSchema, ScanSection
from kubestrata.errors import InputError

PAIRS = [
    (ScanConfig, ScanSection),
    (PrivilegedAllowEntry, PrivilegedAllowSchema),
    (PSSExclusion, PSSExclusionSchema),
    (Config, ConfigFile),
]


@pytest.mark.parametrize(("values", "schema"), PAIRS)
def test_same_fields(values, schema):
    assert [f.name for f in dataclasses.fields(values)] == list(schema.model_fields)


def test_same_defaults():
    assert ScanSection().to_config() == ScanConfig()
    assert ConfigFile().to_config() == Config()


def test_file_values_reach_the_dataclasses(tmp_path):
    p = tmp_path / "kubestrata.yaml"
    p.write_text(
        "scan:\n  require_cpu_limits: true\n  max_node_age_days: 7\n"
        "  privileged_allowlist: [{namespace: tools, name: 'debug-*'}]\n"
        "  pss_exclusions: [{controlName: Host Ports, values: ['80']}]\n"
    )
    cfg = load_config(p).scan
    assert cfg.require_cpu_limits is True and cfg.max_node_age_days == 7
    assert cfg.privileged_allowlist == [PrivilegedAllowEntry(namespace="tools", name="debug-*")]
    assert cfg.pss_exclusions == [PSSExclusion(control="Host Ports", values=["80"])]


def test_bad_file_names_the_field(tmp_path):
    p = tmp_path / "kubestrata.yaml"
    p.write_text("scan:\n  max_node_age_days: 0\n")
    with pytest.raises(InputError) as e:
        load_config(p)
    assert e.value.field == "scan.max_node_age_days"
    p.write_text("scan:\n  regsitries: []\n")
    with pytest.raises(InputError, match="unknown key 'regsitries'; valid keys here: allowed_registries"):
        load_config(p)


def test_no_file_no_pydantic(tmp_path):
    code = (
        "import sys; from kubestrata.config import load_config; c = load_config(None, discover=False);"
        "assert c.scan.registries; assert 'pydantic' not in sys.modules, 'pydantic imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
