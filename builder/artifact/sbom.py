"""CycloneDX SBOM of a frozen runtime, made from its manifest alone.

One component per installed package (name, version, purl `pkg:pypi/...`, hashes
when the manifest has them), the interpreter, the runtime itself as the BOM's
subject, and the tools that built it. Same manifest in, same bytes out: the
serial number is a UUID5 of the profile and its lock and inputs hashes, and the
timestamp is the manifest's SOURCE_DATE_EPOCH or absent.

cyclonedx (and packageurl) are imported by the functions that write or check an SBOM, not when
builder starts: they cost ~0.15 s, and `builder --help` reaches this module through the build
stages.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from builder.artifact.manifest import MANIFEST
from builder.errors import InputError

if TYPE_CHECKING:
    from cyclonedx.model import HashType, Property
    from cyclonedx.model.component import Component

SCHEMA_VERSION = "1.6"
# Fixed namespace for serial numbers: uuid5(NAMESPACE_URL, "runtime-builder").
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://pypi.org/project/runtime-builder/")
PROPERTY_PREFIX = "runtime-builder:"


def _hashes(entry: dict[str, Any]) -> list[HashType]:
    """`sha256: "sha256:HEX"` or `hashes: ["sha256:HEX", ...]` -> CycloneDX hashes (SHA-256 only)."""
    from cyclonedx.model import HashAlgorithm, HashType

    values = [entry["sha256"]] if entry.get("sha256") else []
    values += list(entry.get("hashes") or ())
    out = []
    for value in sorted(set(values)):
        algo, _, hexdigest = str(value).rpartition(":")
        if algo in ("", "sha256") and len(hexdigest) == 64:
            out.append(HashType(alg=HashAlgorithm.SHA_256, content=hexdigest.lower()))
    return out


def source_date_epoch(manifest: dict[str, Any]) -> int | None:
    """The build's SOURCE_DATE_EPOCH as recorded in the manifest (`source_date_epoch`), if any."""
    value = manifest.get("source_date_epoch")
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{MANIFEST}: source_date_epoch {value!r} is not an integer") from exc


def serial_number(manifest: dict[str, Any]) -> uuid.UUID:
    key = ":".join((manifest["profile"], manifest["lock"]["sha256"], manifest.get("inputs_hash", "")))
    return uuid.uuid5(NAMESPACE, key)


def _props(pairs: dict[str, Any]) -> list[Property]:
    from cyclonedx.model import Property

    return [
        Property(name=PROPERTY_PREFIX + k, value=str(v))
        for k, v in sorted(pairs.items())
        if v not in (None, "")
    ]


def _require(manifest: dict[str, Any]) -> None:
    try:
        assert isinstance(manifest["profile"], str)
        assert isinstance(manifest["lock"]["sha256"], str)
        for p in manifest["packages"]:
            assert isinstance(p["name"], str) and isinstance(p["version"], str)
    except (KeyError, TypeError, AssertionError) as exc:
        raise InputError(
            f"{MANIFEST}: not a builder manifest",
            hint="expected profile, lock.sha256 and packages[].name/version",
        ) from exc


def _runtime_component(manifest: dict[str, Any]) -> Component:
    """The runtime itself: the SBOM's subject, with the build's hashes as properties."""
    from cyclonedx.model.component import Component, ComponentType

    profile = manifest["profile"]
    target = manifest.get("target") or {}
    return Component(
        type=ComponentType.APPLICATION,
        name=profile,
        bom_ref=f"runtime:{profile}",
        description=f"frozen runtime of profile {profile}" + (f" for {target['name']}" if "name" in target else ""),
        properties=_props({
            "target": target.get("name"),
            "platform": target.get("platform"),
            "lock": manifest["lock"].get("path"),
            "lock-sha256": manifest["lock"]["sha256"],
            "profile-hash": manifest.get("profile_hash"),
            "inputs-hash": manifest.get("inputs_hash"),
            "files": (manifest.get("totals") or {}).get("files"),
            "bytes": (manifest.get("totals") or {}).get("bytes"),
        }),
    )  # fmt: skip


def _package_components(manifest: dict[str, Any]) -> list[Component]:
    """Each package bundled in the program, then the Python interpreter frozen with it."""
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    components = []
    # Only what is inside the program: the venv also holds build-time-only packages
    # (manifests from before the "bundled" mark list them all).
    inside = [p for p in manifest["packages"] if p.get("bundled", True)]
    for pkg in sorted(inside, key=lambda p: canonicalize_name(p["name"])):
        name = canonicalize_name(pkg["name"])
        purl = PackageURL(type="pypi", name=name, version=pkg["version"])
        components.append(
            Component(
                type=ComponentType.LIBRARY,
                name=pkg["name"],
                version=pkg["version"],
                purl=purl,
                bom_ref=purl.to_string(),
                hashes=_hashes(pkg),
                properties=_props({"installed-bytes": pkg.get("size"), "installed-files": pkg.get("files")}),
            )
        )
    if manifest.get("python"):
        components.append(
            Component(
                type=ComponentType.APPLICATION,
                name="cpython",
                version=manifest["python"],
                purl=PackageURL(type="generic", name="cpython", version=manifest["python"]),
                bom_ref=f"pkg:generic/cpython@{manifest['python']}",
                description="the Python interpreter frozen into the runtime",
            )
        )
    return components


def make_sbom(manifest: dict[str, Any]) -> str:
    """CycloneDX 1.6 JSON for the runtime a manifest describes; deterministic for a given manifest."""
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    _require(manifest)
    tools = manifest.get("tools") or {}
    runtime = _runtime_component(manifest)
    components = _package_components(manifest)
    tool_components = [
        Component(type=ComponentType.APPLICATION, name=name, version=str(version), bom_ref=f"tool:{name}")
        for name, version in sorted(tools.items())
    ]
    epoch = source_date_epoch(manifest)
    meta = BomMetaData(component=runtime)
    meta.tools.components.update(tool_components)
    bom = Bom(serial_number=serial_number(manifest), metadata=meta, components=components)
    bom.register_dependency(runtime, components)
    if epoch is not None:
        bom.metadata.timestamp = datetime.fromtimestamp(epoch, tz=timezone.utc)

    data = json.loads(JsonV1Dot6(bom).output_as_string())
    if epoch is None:
        data["metadata"].pop("timestamp", None)  # the library always sets one: now, which is not an input
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def validate_sbom(text: str) -> None:
    """Raise InputError unless `text` is valid CycloneDX 1.6 JSON (the library's strict schema)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise InputError(f"SBOM is not valid CycloneDX {SCHEMA_VERSION}: {error}")
