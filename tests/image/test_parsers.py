"""The metadata parsers one by one: npm lock v1, egg-info files, node_modules layout rules, jar
manifests, dpkg Source/Status rules, os-release quoting."""

from __future__ import annotations

import io
import json

from kubestrata.image import langpkgs, ospkgs
from tests.image.imagebuild import jar


def test_npm_lock_v1_nested_dependencies() -> None:
    lock = {
        "name": "app",
        "lockfileVersion": 1,
        "dependencies": {
            "lodash": {"version": "4.17.20"},
            "@types/node": {"version": "20.1.0", "dev": True},
            "send": {"version": "0.18.0", "dependencies": {"ms": {"version": "2.1.3"}}},
        },
    }
    pkgs, gaps = langpkgs.npm_lock_packages(json.dumps(lock).encode(), "app/package-lock.json")
    assert gaps == []
    assert sorted((p.name, p.version, p.purl) for p in pkgs) == [
        ("@types/node", "20.1.0", "pkg:npm/%40types/node@20.1.0"),
        ("lodash", "4.17.20", "pkg:npm/lodash@4.17.20"),
        ("ms", "2.1.3", "pkg:npm/ms@2.1.3"),
        ("send", "0.18.0", "pkg:npm/send@0.18.0"),
    ]


def test_npm_lock_v3_skips_the_project_and_links() -> None:
    lock = {
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "app", "version": "1.0.0"},
            "node_modules/local": {"resolved": "../local", "link": True},
            "node_modules/a/node_modules/b": {"version": "2.0.0"},
        },
    }
    pkgs, _ = langpkgs.npm_lock_packages(json.dumps(lock).encode(), "package-lock.json")
    assert [(p.name, p.version) for p in pkgs] == [("b", "2.0.0")]


def test_node_module_manifest_paths() -> None:
    yes = [
        "a/node_modules/x/package.json",
        "node_modules/@s/x/package.json",
        "n/node_modules/x/node_modules/y/package.json",
    ]
    no = [
        "node_modules/x/lib/package.json",
        "node_modules/@s/package.json",
        "node_modules/.bin/package.json",
        "package.json",
    ]
    assert [langpkgs.is_node_module_manifest(p) for p in yes] == [True] * 3
    assert [langpkgs.is_node_module_manifest(p) for p in no] == [False] * 4


def test_egg_info_file_and_name_normalisation() -> None:
    pkgs, gaps = langpkgs.python_packages(
        b"Metadata-Version: 1.1\nName: Zope.Interface\nVersion: 5.4.0\n", "x.egg-info"
    )
    assert gaps == [] and [(p.name, p.purl) for p in pkgs] == [
        ("zope-interface", "pkg:pypi/zope-interface@5.4.0")
    ]


def test_jar_manifest_only_and_not_a_zip() -> None:
    data = jar(
        manifest="Manifest-Version: 1.0\r\nImplementation-Title: commons-text\r\nImplementation-Vendor-Id: org.apache.commons\r\nImplementation-Version: 1.9\r\n"
    )
    pkgs, gaps = langpkgs.java_packages(io.BytesIO(data), "app/lib/commons-text.jar")
    assert gaps == [] and [(p.name, p.version, p.purl) for p in pkgs] == [
        ("org.apache.commons:commons-text", "1.9", "pkg:maven/org.apache.commons/commons-text@1.9")
    ]
    pkgs, gaps = langpkgs.java_packages(io.BytesIO(b"not a zip"), "bad.jar")
    assert pkgs == [] and "not a readable zip archive" in gaps[0].detail


def test_dpkg_rules() -> None:
    distro = ospkgs.distro_of({"ID": "ubuntu", "VERSION_ID": "22.04"}, "dpkg")
    status = (
        b"Package: a\nStatus: install ok installed\nVersion: 1.0\nSource: src-a (1.0-0ubuntu1)\n\n"
        b"Package: b\nStatus: purge ok not-installed\nVersion: 2\n\n"
        b"Package: c\nStatus: install ok half-configured\nVersion: 3\nDescription: first\n continued\n"
    )
    pkgs, gaps = ospkgs.dpkg_packages(status, "var/lib/dpkg/status", distro)
    assert gaps == []
    assert [(p.name, p.source_name, p.ecosystem, p.release) for p in pkgs] == [
        ("a", "src-a", "Ubuntu", "22.04"),
        ("c", "c", "Ubuntu", "22.04"),
    ]


def test_os_release_quoting_and_sid() -> None:
    osr = ospkgs.parse_os_release(
        b'# comment\nID=debian\nPRETTY_NAME="Debian GNU/Linux trixie/sid"\nVERSION_CODENAME=trixie\nNAME=\'D \\"x\\"\'\n'
    )
    assert osr["PRETTY_NAME"] == "Debian GNU/Linux trixie/sid" and osr["NAME"] == 'D "x"'
    assert ospkgs.distro_of(osr, "dpkg").release == "trixie"
    assert ospkgs.distro_of({}, "apk").ecosystem == "Alpine"  # no os-release: the package manager's family
