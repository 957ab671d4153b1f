"""CycloneDX SBOM from a manifest: valid, complete, and the same bytes for the same manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from builder.artifact.sbom import make_sbom, validate_sbom
from builder.errors import InputError
from release.helpers import run_cli

HEX = "ab" * 32


def manifest(**extra: Any) -> dict[str, Any]:
    return {
        "schema": 1,
        "profile": "minimal-linux-x86_64",
        "profile_hash": "sha256:" + "01" * 32,
        "inputs_hash": "sha256:" + "02" * 32,
        "lock": {"path": "locks/minimal-linux-x86_64.lock", "sha256": "sha256:" + "03" * 32},
        "target": {"name": "linux-x86_64", "platform": "x86_64-manylinux_2_28"},
        "python": "3.11.7",
        "tools": {"builder": "0.1.0", "pyinstaller": "6.22.3", "uv": "0.13.9"},
        "packages": [
            {
                "name": "torch",
                "version": "2.13.0+cpu",
                "size": 10,
                "files": 2,
                "top_level": ["torch"],
                "sha256": "sha256:" + HEX,
            },
            {"name": "Scikit_Learn", "version": "1.7.2", "size": 5, "files": 1, "top_level": ["sklearn"]},
        ],
        "totals": {"files": 3, "bytes": 15},
        "files": [],
        **extra,
    }


def test_sbom_is_valid_cyclonedx_by_the_librarys_strict_json_validator() -> None:
    validate_sbom(make_sbom(manifest()))


def test_sbom_has_one_pypi_component_per_package_with_purl_and_hashes() -> None:
    bom = json.loads(make_sbom(manifest()))
    pypi = {c["name"]: c for c in bom["components"] if c["purl"].startswith("pkg:pypi/")}
    assert pypi["torch"]["purl"] == "pkg:pypi/torch@2.13.0%2Bcpu"
    assert pypi["torch"]["hashes"] == [{"alg": "SHA-256", "content": HEX}]
    assert pypi["Scikit_Learn"]["purl"] == "pkg:pypi/scikit-learn@1.7.2"
    assert "hashes" not in pypi["Scikit_Learn"]
    assert bom["metadata"]["component"]["name"] == "minimal-linux-x86_64"
    assert {t["name"] for t in bom["metadata"]["tools"]["components"]} == {"builder", "pyinstaller", "uv"}
    # The runtime depends on every component.
    root = next(d for d in bom["dependencies"] if d["ref"] == "runtime:minimal-linux-x86_64")
    assert len(root["dependsOn"]) == len(bom["components"])


def test_sbom_is_deterministic_without_timestamp_when_no_source_date_epoch() -> None:
    first = make_sbom(manifest())
    assert first == make_sbom(manifest())
    bom = json.loads(first)
    assert "timestamp" not in bom["metadata"]
    assert bom["serialNumber"].startswith("urn:uuid:")


def test_sbom_serial_number_follows_the_lock_and_timestamp_source_date_epoch() -> None:
    other_lock = manifest(lock={"path": "x.lock", "sha256": "sha256:" + "04" * 32})
    assert (
        json.loads(make_sbom(manifest()))["serialNumber"] != json.loads(make_sbom(other_lock))["serialNumber"]
    )
    text = make_sbom(manifest(source_date_epoch=315532800))
    validate_sbom(text)
    assert json.loads(text)["metadata"]["timestamp"] == "1980-01-01T00:00:00+00:00"


def test_manifest_without_lock_is_an_input_error() -> None:
    bad = manifest()
    del bad["lock"]
    with pytest.raises(InputError) as exc:
        make_sbom(bad)
    assert "lock.sha256" in exc.value.one_line()


def test_sbom_lists_only_packages_that_went_into_the_program() -> None:
    data = manifest()
    data["packages"] = [
        {
            "name": "torch",
            "version": "2.13.0+cpu",
            "size": 1,
            "files": 1,
            "top_level": ["torch"],
            "bundled": True,
        },
        {
            "name": "librosa",
            "version": "0.11.0",
            "size": 1,
            "files": 1,
            "top_level": ["librosa"],
            "bundled": False,
        },
    ]
    text = make_sbom(data)
    validate_sbom(text)
    names = {c["name"] for c in json.loads(text)["components"]}
    assert "torch" in names and "librosa" not in names


def test_sbom_command_writes_the_sbom_of_a_dist(dist: Path, tmp_path: Path) -> None:
    data = json.loads((dist / "manifest.json").read_text())
    data.update(lock={"path": "locks/x.lock", "sha256": "sha256:" + "05" * 32}, packages=[])
    (dist / "manifest.json").write_text(json.dumps(data))
    out = tmp_path / "sbom.cdx.json"
    proc = run_cli("sbom", dist, "--out", out)
    assert proc.returncode == 0, proc.stderr
    validate_sbom(out.read_text())
