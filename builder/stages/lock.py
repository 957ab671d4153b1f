"""Locks: `uv pip compile` for the profile's target, from any host, into locks/P.lock.

A lock pins every package with hashes, allows wheels only, and starts with a
header that records the hash of the profile's lock inputs, so a lock made from
an older profile is detected ("stale"), and the hash of its own body, so a lock
edited by hand is detected too ("modified"): both by `builder lock --check`.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from builder.bounds import MAX_LOCK_BYTES, read_bounded
from builder.errors import (
    BuilderError,
    InputError,
    ModifiedLockError,
    NetworkError,
    NoWheelError,
    ResolutionError,
    StaleLockError,
)
from builder.fsutil import atomic_write_text, sha256_file
from builder.profile import Profile
from builder.schemas import tagged
from builder.stages.cpu_builds import cuda_builds
from builder.tools import uv
from builder.tools.uv_report import MissingWheel, missing_wheel
from builder.wheelhouse import Wheelhouse

HASH_LINE = "# profile-hash: "
BODY_LINE = "# body-hash: "


@dataclass(frozen=True, kw_only=True)
class Sources:
    """The uv arguments that say where wheels come from, and a word on each special one."""

    args: tuple[str, ...]
    notes: dict[str, str]  # package -> where it comes from


def sources(profile: Profile, wheelhouse: Wheelhouse | None) -> Sources:
    args = ["--index-url", profile.indexes.index_url]
    for url in profile.indexes.extra_index_urls:
        args += ["--extra-index-url", url]
    for link in profile.indexes.find_links:
        args += ["--find-links", str((profile.path.parent.parent / link) if "://" not in link else link)]
    notes: dict[str, str] = {}
    if profile.from_wheelhouse:
        if wheelhouse is not None:
            # The wheelhouse replaces the special index: that index is never contacted.
            args += ["--find-links", str(wheelhouse.path)]
            for pkg in profile.from_wheelhouse:
                notes[pkg] = f"wheelhouse {wheelhouse.path} (from {wheelhouse.origin})"
        elif profile.indexes.torch_index:
            args += ["--extra-index-url", profile.indexes.torch_index]
            for pkg in profile.from_wheelhouse:
                notes[pkg] = f"index {profile.indexes.torch_index}"
        else:
            raise InputError(
                f"{profile.path}: {', '.join(profile.from_wheelhouse)} must come from a wheelhouse "
                "and none was given",
                hint="pass --wheelhouse DIR, set BUILDER_WHEELHOUSE, or set indexes.torch-index",
            )
    return Sources(args=tuple(args), notes=notes)


@dataclass(frozen=True, kw_only=True)
class Pin:
    name: str
    version: str
    hashes: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Lock:
    path: Path
    profile_hash: str | None
    body_hash: str | None  # as the header records it
    actual_body_hash: str  # of the body as it is now
    pins: dict[str, Pin]
    url_requirements: tuple[str, ...] = ()  # `name @ url` lines: packages not pinned by version

    def hash(self) -> str:
        return sha256_file(self.path)


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)\s*(?:\\)?$")
_URL_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*@\s*\S+")


def split_lock(text: str) -> tuple[list[str], str]:
    """(header lines, body): the header is the leading `#` lines builder writes (pure)."""
    lines = text.splitlines(keepends=True)
    n = 0
    while n < len(lines) and lines[n].startswith("#"):
        n += 1
    return [ln.rstrip("\n") for ln in lines[:n]], "".join(lines[n:])


def body_hash(body: str) -> str:
    """The hash of a lock's body over LF line endings: a CRLF checkout (git on Windows) is the same lock."""
    return "sha256:" + hashlib.sha256(body.replace("\r\n", "\n").encode("utf-8")).hexdigest()


_HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


def parse_lock(text: str, path: Path) -> Lock:
    """Read pins and hashes from a lock in uv's requirements format (pure)."""
    head, body = split_lock(text)
    profile_hash = next((ln[len(HASH_LINE) :].strip() for ln in head if ln.startswith(HASH_LINE)), None)
    recorded_body = next((ln[len(BODY_LINE) :].strip() for ln in head if ln.startswith(BODY_LINE)), None)
    urls: list[str] = []
    pins: dict[str, Pin] = {}
    current: tuple[str, str] | None = None
    hashes: list[str] = []

    def flush() -> None:
        if current:
            name = canonicalize_name(current[0])
            pins[name] = Pin(name=name, version=current[1], hashes=tuple(hashes))

    for line in body.splitlines():
        if m := _PIN.match(line):
            flush()
            current, hashes = (m.group(1), m.group(2)), []
        elif m := _URL_PIN.match(line):
            flush()
            current = None
            urls.append(canonicalize_name(m.group(1)))
        elif m := _HASH.search(line):
            hashes.append(m.group(1))
    flush()
    return Lock(
        path=path,
        profile_hash=profile_hash,
        body_hash=recorded_body,
        actual_body_hash=body_hash(body),
        pins=pins,
        url_requirements=tuple(urls),
    )


def read_lock(path: Path) -> Lock:
    if not os.path.lexists(path):  # a broken link is there, and read_bounded names it as such
        raise StaleLockError(f"{path}: no lock file", hint=f"run `builder lock --profile {path.stem}`")
    data = read_bounded(path, "lock", MAX_LOCK_BYTES, wrong_kind=StaleLockError)
    again = f"run `builder lock --profile {path.stem}`"
    if data.startswith(codecs.BOM_UTF8):
        raise ModifiedLockError(
            f"{path}: modified: it starts with a UTF-8 byte-order mark (an editor re-saved it)", hint=again
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ModifiedLockError(f"{path}: not a lock (not UTF-8 text)", hint=again) from None
    if "\0" in text:
        raise ModifiedLockError(f"{path}: not a lock (binary data)", hint=again)
    return parse_lock(text, path)


def header(profile: Profile, src: Sources, body: str) -> str:
    lines = [
        f"# Lock for profile {profile.name}: generated by `builder lock`, do not edit.",
        f"{HASH_LINE}{profile.lock_hash()}",
        f"{BODY_LINE}{body_hash(body)}",
        f"# target: {profile.target.name} ({profile.target.uv_platform}"
        + (f", macOS >= {profile.target.macos_min}" if profile.target.macos_min else "")
        + f"), Python {profile.python}",
        f"# resolver: uv {uv.version()}, only-binary {','.join(profile.only_binary)}, with hashes",
    ]
    for pkg in profile.from_wheelhouse:
        lines.append(
            f"# {pkg}: from a wheelhouse or {profile.indexes.torch_index or 'a local find-links'}, never PyPI"
        )
    for override in profile.packages.overrides:
        lines.append(f"# override {override}: replaces every package's pin of it (packages.overrides)")
    for pkg, why in sorted(profile.excluded.items()):
        lines.append(f"# excluded {pkg}: {why}")
    return "\n".join(lines) + "\n"


def compile_lock(
    profile: Profile, out: Path, wheelhouse: Wheelhouse | None, *, upgrade: bool = False
) -> Lock:
    """Resolve the profile for its target and write the lock atomically. The current lock's pins
    are kept where they still fit (a relock for a changed key moves nothing else), unless `upgrade`."""
    src = sources(profile, wheelhouse)
    with tempfile.TemporaryDirectory(prefix="builder-lock-") as tmp:
        # A fixed relative input name keeps host paths out of the lock's annotations.
        req = Path(tmp) / f"{profile.name}.in"
        req.write_text("\n".join(profile.requirements) + "\n", encoding="utf-8")
        extra = _resolver_files(profile, Path(tmp))
        if not upgrade and _readable_lock(out):
            # uv keeps an output file's pins as preferences: the copy is what it reads and rewrites
            shutil.copyfile(out, Path(tmp) / "previous.lock")
            extra += ["--output-file", "previous.lock"]
        args = [
            "pip", "compile", req.name,
            "--python-platform", profile.target.uv_platform,
            "--python-version", profile.python,
            "--generate-hashes", "--no-header",
            *[f"--only-binary={ob}" for ob in profile.only_binary],
            *src.args,
            *extra,
        ]  # fmt: skip
        proc = uv.run(["--directory", tmp, *args], check=False, env=profile.target.resolver_env())
    if proc.returncode != 0:
        raise condense_uv_error(proc.stderr, profile)
    text = header(profile, src, proc.stdout) + proc.stdout
    lock = parse_lock(text, out)
    _check_wheelhouse_pins(profile, lock)
    _check_cpu_builds(profile, lock)
    atomic_write_text(out, text)
    return lock


def _readable_lock(path: Path) -> bool:
    """A regular file that reads as a lock: a damaged or hand-made one is not a preference."""
    if not path.is_file():
        return False
    try:
        read_lock(path)
    except BuilderError:
        return False
    return True


def _resolver_files(profile: Profile, tmp: Path) -> list[str]:
    """uv's --override and --excludes files for the profile's packages.overrides and .excluded."""
    args: list[str] = []
    if profile.packages.overrides:
        # uv's --override: an upstream pin (msst's torch<2.12) gives way to the profile's
        (tmp / "overrides.txt").write_text("\n".join(profile.packages.overrides) + "\n", encoding="utf-8")
        args += ["--override", "overrides.txt"]
    if profile.excluded:
        # uv's --excludes: a dependency the program runs without (audio-separator's diffq, which has
        # no cp311 wheel) is left out of the resolution, not only undocumented in the requirements
        (tmp / "excludes.txt").write_text("\n".join(sorted(profile.excluded)) + "\n", encoding="utf-8")
        args += ["--excludes", "excludes.txt"]
    return args


def _check_wheelhouse_pins(profile: Profile, lock: Lock) -> None:
    # PyPI never hosts local versions (+cpu), so a local label proves the pin did
    # not come from PyPI, whose Linux torch is a multi-GB CUDA build.
    for pkg in profile.from_wheelhouse:
        name = canonicalize_name(pkg)
        if name in lock.url_requirements:
            raise ResolutionError(
                f"{profile.path}: {pkg} is a direct URL requirement, but it must come from a wheelhouse",
                hint=f"require it by version (e.g. {pkg}==2.13.0+cpu) and pass --wheelhouse",
            )
        pin = lock.pins.get(name)
        if pin is None:
            raise ResolutionError(
                f"{profile.path}: {pkg} is in packages.from-wheelhouse but the lock does not pin it",
                hint="require it in packages.requirements, by version",
            )
        if not Version(pin.version).local:
            raise ResolutionError(
                f"{profile.path}: {pkg} resolved to {pin.version} without a local version label, "
                "which means it could come from PyPI",
                hint=f"pin it with its build label, e.g. {pkg}=={pin.version}+cpu",
            )


def _check_cpu_builds(profile: Profile, lock: Lock) -> None:
    # A CUDA build beside CPU torch fails to load (or drags in GBs of CUDA libraries), and the
    # resolver cannot tell: PyPI's torchvision 0.28.0 accepts torch 2.13.0+cpu as torch==2.13.0.
    found = cuda_builds(
        {n: p.version for n, p in lock.pins.items()}, linux=profile.target.sys_platform == "linux"
    )
    if found:
        name, why = found[0]
        more = (
            f" (and {len(found) - 1} more: {', '.join(n for n, _ in found[1:4])})" if len(found) > 1 else ""
        )
        raise ResolutionError(
            f"{profile.path}: the lock takes a CUDA build into a CPU profile (torch "
            f"{lock.pins['torch'].version}): {why}{more}",
            hint=f"pin its CPU build (e.g. {name}=={lock.pins[name].version.split('+')[0]}+cpu) and add it to "
            f"packages.from-wheelhouse, or, when the program runs without it, leave it out of the resolution "
            f'with packages.excluded ({name} = "why")',
        )


def condense_uv_error(stderr: str, profile: Profile) -> BuilderError:
    """Turn uv's report into one line naming the package and the target, or the index or
    folder it could not read (pure)."""
    if (unreachable := uv.network_failure(stderr)) is not None:
        return NetworkError(
            f"{profile.path}: cannot reach a package index: {unreachable}",
            hint="check the network and the profile's indexes.index-url / extra-index-urls",
        )
    text = " ".join(stderr.split())
    if m := re.search(r"Failed to read `--find-links` directory: (.*?) cause: (.*?)(?: cause: |$)", text):
        return InputError(
            f"{profile.path}: cannot read the wheel folder {m.group(1)}: {m.group(2)}",
            hint="check --wheelhouse / BUILDER_WHEELHOUSE and the profile's indexes.find-links",
        )
    where = f"{profile.target.uv_platform}, Python {profile.python}"
    cause = re.search(r"cause: (.*?)(?: hint: |$)", text)
    reason = cause.group(1) if cause else text.removeprefix("error: ")
    missing = missing_wheel(stderr)
    if missing:
        return _no_wheel_error(missing, profile, where)
    if m := re.search(r"there is no version of (\S+)", reason):
        hint = None
        if canonicalize_name(re.split(r"[=<>!~ ]", m.group(1))[0]) in {
            canonicalize_name(p) for p in profile.from_wheelhouse
        }:
            hint = "it comes from a wheelhouse: check --wheelhouse / BUILDER_WHEELHOUSE / PIP_FIND_LINKS holds it"
        return ResolutionError(f"{profile.path}: no version of {m.group(1)} exists for {where}", hint=hint)
    if m := re.search(r"Because (\S+) was not found in the package registry", reason):
        return ResolutionError(
            f"{profile.path}: {m.group(1)} was not found on the package index for {where}",
            hint=f"check the name, and that indexes.index-url ({profile.indexes.index_url}) is a package "
            "index: an index URL that answers 'not found' for every package looks like this",
        )
    # uv's own summary sentence is the clearest condensed reason.
    concl = re.findall(
        r"(?:^|\. |And )(?:b|B)ecause (.*?), we can conclude that your requirements are unsatisfiable", reason
    )
    short = ("because " + concl[-1]) if concl else reason[:300]
    return ResolutionError(f"{profile.path}: requirements are unsatisfiable for {where}: {short}")


def _no_wheel_error(missing: MissingWheel, profile: Profile, where: str) -> NoWheelError:
    pkg = missing.package
    why = (
        f"no file tagged {missing.tag}"
        if missing.tag
        else "only source distributions, and packages.only-binary forbids building them"
        if missing.kind == "any"
        else f"no wheel with a matching {missing.kind} tag"
    )
    return NoWheelError(
        f"{profile.path}: no wheel of {pkg} {missing.versions} for {where} ({why})",
        hint=(f"wheels exist for {missing.available}; " if missing.available else "")
        + f"require a version of {pkg} that has a wheel for this target in packages.requirements, "
        f"replace an upstream pin of it with packages.overrides (e.g. '{pkg}>=X'), "
        f"or, when the program runs without it, leave it out of the resolution with packages.excluded "
        f'({pkg} = "why")',
    )


def check_lock(profile: Profile, path: Path) -> str:
    """Return 'fresh', or raise StaleLockError saying why."""
    lock = read_lock(path)
    if lock.profile_hash is None:
        raise StaleLockError(
            f"{path}: no '{HASH_LINE.strip()}' header", hint=f"run `builder lock --profile {profile.name}`"
        )
    if lock.body_hash != lock.actual_body_hash:
        what = (
            "has no body-hash header"
            if lock.body_hash is None
            else "was edited after `builder lock` wrote it"
        )
        raise ModifiedLockError(
            f"{path}: modified: the lock {what} (its pins and hashes no longer match its header)",
            hint=f"do not edit locks by hand; run `builder lock --profile {profile.name}`",
        )
    unhashed = sorted(p.name for p in lock.pins.values() if not p.hashes)
    if unhashed:
        raise ModifiedLockError(f"{path}: modified: {unhashed[0]} has no --hash line")
    if lock.profile_hash != profile.lock_hash():
        raise StaleLockError(
            f"{path}: stale: made from a different {profile.path.name} (or a profile it extends)",
            hint=f"run `builder lock --profile {profile.name}`",
        )
    return "fresh"


@dataclass(frozen=True, kw_only=True)
class LockStatus:
    """One profile's lock as `builder lock` left or found it."""

    profile: str
    lock: Path
    status: str  # written | fresh | stale | modified | missing
    reason: str | None = None  # stale or modified: the error line
    packages: int | None = None  # written: the pins

    def to_json(self) -> dict[str, object]:
        return {"profile": self.profile, "lock": str(self.lock), "status": self.status,
                "reason": self.reason, "packages": self.packages}  # fmt: skip


def lock_document(statuses: list[LockStatus]) -> dict[str, object]:
    """The `builder lock --json` document (pure)."""
    return tagged("lock", {"locks": [s.to_json() for s in statuses]})
