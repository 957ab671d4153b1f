"""macOS rules read on this Linux host from real Mach-O files: minimum OS versions, signatures,
the post-freeze snapshot, the default entitlements, and the profile keys that drive them."""

from __future__ import annotations

import os
import plistlib
import re
import shutil
from pathlib import Path

import lief
import pytest

from builder.artifact import macos
from builder.artifact.bundle import frozen_problems, macos_minimum
from builder.errors import InputError, ProfileError
from builder.profile import load_profile
from builder.stages.freeze import ENTITLEMENTS_NAME, plan_freeze
from builder.stages.package import target_json

ROOT = Path(__file__).resolve().parents[2]
FAT = ROOT / "tests" / "fixtures" / "macho" / "markupsafe-universal2.so"


def bundle(tmp_path: Path) -> Path:
    """A frozen-like folder with the real fat Mach-O, a link to it, and a non-Mach-O file."""
    folder = tmp_path / "stems"
    (folder / "_internal" / "markupsafe").mkdir(parents=True)
    shutil.copy(FAT, folder / "_internal" / "markupsafe" / "_speedups.so")
    os.symlink("markupsafe/_speedups.so", folder / "_internal" / "alias.so")
    (folder / "runtime.json").write_text("{}\n")
    return folder


def test_each_slice_reports_its_load_command_minimum_and_signature() -> None:
    slices = {s.arch: s for s in macos.read_slices(FAT)}
    assert slices["x86_64"].minos == (10, 9, 0) and slices["x86_64"].command == "version_min"
    assert slices["arm64"].minos == (11, 0, 0) and slices["arm64"].command == "build_version"
    assert slices["arm64"].signed and not slices["x86_64"].signed


def test_a_binary_newer_than_the_declared_minimum_is_named(tmp_path: Path) -> None:
    folder = bundle(tmp_path)
    assert macos.min_version_problems(folder, "11.0") == []
    problems = macos.min_version_problems(folder, "10.15")
    assert problems == [
        "_internal/markupsafe/_speedups.so (arm64) needs macOS 11.0, newer than the declared minimum 10.15"
    ]  # the link is not read twice; the x86_64 slice (10.9) is fine


def test_only_real_mach_o_files_are_read(tmp_path: Path) -> None:
    folder = bundle(tmp_path)
    (folder / "_internal" / "libfake.dylib").write_bytes(b"\x7fELF not a Mach-O")
    assert [p.name for p in macos.macho_files(folder)] == ["_speedups.so"]


def test_unsigned_slices_are_reported(tmp_path: Path) -> None:
    assert macos.unsigned(bundle(tmp_path)) == ["_internal/markupsafe/_speedups.so (x86_64)"]


def test_a_signature_removed_by_lief_is_found_missing(tmp_path: Path) -> None:
    thin = lief.MachO.parse(str(FAT)).take(lief.MachO.Header.CPU_TYPE.ARM64)
    assert thin is not None and thin.has_code_signature
    thin.remove_signature()
    out = tmp_path / "arm64-unsigned.so"
    thin.write(str(out))
    (tmp_path / "f").mkdir()
    shutil.move(out, tmp_path / "f" / out.name)
    assert macos.unsigned(tmp_path / "f") == ["arm64-unsigned.so (arm64)"]


def test_snapshot_accepts_links_and_refuses_a_rewritten_mach_o(tmp_path: Path) -> None:
    folder = bundle(tmp_path)
    lib = folder / "_internal" / "markupsafe" / "_speedups.so"
    copy = folder / "_internal" / "copy.so"
    shutil.copy(lib, copy)
    before = macos.snapshot(folder)
    assert set(before) == {"_internal/markupsafe/_speedups.so", "_internal/copy.so"}
    # what the OpenMP pass does: a byte-identical copy becomes a link to the kept file
    copy.unlink()
    os.symlink("markupsafe/_speedups.so", copy)
    assert macos.changed_since(folder, before) == []
    # what must never happen after signing: bytes of a Mach-O rewritten
    lib.write_bytes(lib.read_bytes() + b"\0")
    assert macos.changed_since(folder, before) == [
        "_internal/copy.so (now a link to another file)",
        "_internal/markupsafe/_speedups.so (rewritten after signing)",
    ]


def test_default_entitlements_are_a_plist_with_what_hardened_torch_needs() -> None:
    data = plistlib.loads(macos.DEFAULT_ENTITLEMENTS.read_bytes())
    assert data == {
        "com.apple.security.cs.allow-unsigned-executable-memory": True,
        "com.apple.security.cs.disable-library-validation": True,
    }


def test_mac_profiles_sign_with_the_entitlements_and_declare_their_minimum(tmp_path: Path) -> None:
    sp = tmp_path / "site-packages"
    (sp / "torch").mkdir(parents=True)
    for name, minimum in (("minimal-mac-arm", "14.0"), ("minimal-mac-intel", "11.0")):
        profile = load_profile(name, ROOT / "profiles")
        plan = plan_freeze(profile, sp, ROOT, tmp_path / name)
        assert plan.files[ENTITLEMENTS_NAME] == macos.DEFAULT_ENTITLEMENTS.read_text()
        spec = plan.files["stems.spec"]
        assert "codesign_identity=None" in spec  # ad-hoc
        assert f"entitlements_file={str(plan.scratch / ENTITLEMENTS_NAME)!r}" in spec
        assert macos_minimum(profile) == minimum and target_json(profile)["macos_min"] == minimum
    linux = load_profile("minimal-linux-x86_64", ROOT / "profiles")
    linux_plan = plan_freeze(linux, sp, ROOT, tmp_path / "linux")
    assert (
        ENTITLEMENTS_NAME not in linux_plan.files
        and "entitlements_file=None" in linux_plan.files["stems.spec"]
    )
    assert macos_minimum(linux) is None and "macos_min" not in target_json(linux)


def write_profile(folder: Path, body: str) -> None:
    (folder / "profiles").mkdir(exist_ok=True)
    (folder / "profiles" / "p.toml").write_text(
        f'description = "t"\n[target]\nname = "mac-intel"\npython = "3.10"\n{body}'
    )


def test_profile_keys_set_identity_entitlements_and_a_higher_minimum(tmp_path: Path) -> None:
    write_profile(
        tmp_path,
        '[freeze]\nmacos-min-version = "12.3"\ncodesign-identity = "Developer ID Application: X"\n'
        'entitlements = "signing/app.plist"\n',
    )
    (tmp_path / "signing").mkdir()
    (tmp_path / "signing" / "app.plist").write_text("<plist/>")
    (tmp_path / "sp" / "torch").mkdir(parents=True)
    profile = load_profile("p", tmp_path / "profiles")
    assert macos_minimum(profile) == "12.3"
    plan = plan_freeze(profile, tmp_path / "sp", tmp_path, tmp_path / "work")
    assert plan.files[ENTITLEMENTS_NAME] == "<plist/>"
    assert "codesign_identity='Developer ID Application: X'" in plan.files["stems.spec"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[freeze]\nmacos-min-version = "10.15"\n', "below mac-intel's minimum 11.0"),
        ('[freeze]\nmacos-min-version = "eleven"\n', 'a macOS version like "11.0"'),
    ],
)
def test_bad_minimum_is_one_profile_error(tmp_path: Path, body: str, message: str) -> None:
    write_profile(tmp_path, body)
    with pytest.raises(ProfileError, match=message):
        load_profile("p", tmp_path / "profiles")


def test_minimum_on_a_non_mac_target_is_refused(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "p.toml").write_text(
        'description = "t"\n[target]\nname = "linux-x86_64"\npython = "3.11"\n[freeze]\nmacos-min-version = "14.0"\n'
    )
    with pytest.raises(ProfileError, match="for mac targets, not linux-x86_64"):
        load_profile("p", tmp_path / "profiles")


def test_missing_entitlements_file_is_one_input_error(tmp_path: Path) -> None:
    write_profile(tmp_path, '[freeze]\nentitlements = "nope.plist"\n')
    (tmp_path / "sp" / "torch").mkdir(parents=True)
    with pytest.raises(InputError, match=re.escape("key 'freeze.entitlements': cannot read")):
        plan_freeze(load_profile("p", tmp_path / "profiles"), tmp_path / "sp", tmp_path, tmp_path / "w")


def test_check_of_a_mac_bundle_names_too_new_and_unsigned_binaries(tmp_path: Path) -> None:
    write_profile(tmp_path, "")
    profile = load_profile("p", tmp_path / "profiles")  # mac-intel: minimum 11.0
    folder = bundle(tmp_path)
    assert frozen_problems(folder, {"openmp": []}, profile) == [
        "1 unsigned Mach-O file(s): _internal/markupsafe/_speedups.so (x86_64)"
    ]
    assert macos.bundle_problems(folder, macos_min="10.9")[0].endswith("newer than the declared minimum 10.9")
