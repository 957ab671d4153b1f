"""The profile's workload ([bench].command): any program's own command line, measured the same way.

`stems` measures itself (`stems bench`); a program that knows nothing of runtime-builder is
measured from outside: builder writes the input (generated audio, or a file of the project),
runs the command with the placeholders filled in, and reads the process figures from the runner
and the rest (threads at torch's import, pools, precision, import times) from the probe the
freeze's runtime hook writes at exit.
"""

from __future__ import annotations

import json
import math
import random
import shlex
import shutil
import string
import struct
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.contract import violations
from builder.errors import ProfileError
from builder.fsutil import temp_file_name
from builder.measure.take.runner import ProcessResult, run_monitored
from builder.openmp.pools import loaded_runtimes
from builder.profile import Profile

PROBE_ENV = "RUNTIME_BUILDER_PROBE"
PLACEHOLDERS = (
    "program",
    "input",
    "input_dir",
    "output",
    "config",
    "checkpoint",
    "seconds",
    "rate",
    "channels",
)
DEFAULT_CHECK = "{program} --help"


def command_problem(text: str) -> str | None:
    """Why a [bench] command line is not usable, or None (pure)."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        return f"not a command line ({exc})"
    if not tokens or tokens[0] != "{program}":
        return "must start with {program}"
    for token in tokens:
        for name in _fields(token):
            if name not in PLACEHOLDERS:
                return f"unknown placeholder {{{name}}} (known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
    return None


def _fields(token: str) -> list[str]:
    try:
        return [f for _, f, _, _ in string.Formatter().parse(token) if f is not None]
    except ValueError:
        return ["?"]


def template_text(tokens: tuple[str, ...]) -> str:
    """The command line as the profile writes it: placeholders unquoted, anything else quoted (pure)."""

    def shown(token: str) -> str:
        bare = token.replace("{", "").replace("}", "")
        # a token whose only shell-special characters are its placeholders' braces stays as written
        return token if _fields(token) and shlex.quote(bare) == bare else shlex.quote(token)

    return " ".join(shown(t) for t in tokens)


@dataclass(frozen=True, kw_only=True)
class Workload:
    command: tuple[str, ...]  # the template, first token {program}
    seconds: float
    rate: int
    channels: int
    input_file: Path | None = None
    config: Path | None = None
    checkpoint: Path | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "command": template_text(self.command),
            "input": str(self.input_file) if self.input_file else
            f"generated: {self.seconds:g} s, {self.rate} Hz, {self.channels} channels",
            "config": str(self.config) if self.config else None,
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
        }  # fmt: skip

    def render(self, program: list[str], workdir: Path) -> list[str]:
        """The command for one run: the input ready in `workdir/input/`, `workdir/output/` empty."""
        inputs = workdir / "input"
        target = inputs / "input.wav"
        if not target.is_file():
            inputs.mkdir(parents=True, exist_ok=True)
            if self.input_file is not None:
                shutil.copyfile(self.input_file, target)
            else:
                write_wav(target, seconds=self.seconds, rate=self.rate, channels=self.channels)
        output = workdir / "output"
        shutil.rmtree(output, ignore_errors=True)
        output.mkdir(parents=True)
        values = {
            "input": str(target), "input_dir": str(inputs), "output": str(output),
            "config": str(self.config or ""), "checkpoint": str(self.checkpoint or ""),
            "seconds": f"{self.seconds:g}", "rate": str(self.rate), "channels": str(self.channels),
        }  # fmt: skip
        argv: list[str] = []
        for token in self.command:
            argv += program if token == "{program}" else [token.format_map(values)]
        return argv


def workload_of(profile: Profile, root: Path, *, check: bool = False) -> Workload | None:
    """The profile's workload (`check`: the check command, `{program} --help` by default for a
    program other than stems); None where stems measures itself."""
    b = profile.bench
    key = "bench.check-command" if check else "bench.command"
    text = b.check_command if check else b.command
    if text is None:
        if not check or profile.program.bundled:
            return None
        text = DEFAULT_CHECK
    problem = command_problem(text)
    if problem:
        raise ProfileError(f"{profile.path}: key '{key}' {problem}: {text!r}")
    files: dict[str, Path | None] = {}
    # {config} and {checkpoint} may name a folder (a model folder); the input is always a WAV file
    for name, rel in (("input-file", b.input_file), ("config", b.config), ("checkpoint", b.checkpoint)):
        path = root / rel if rel else None
        folder_ok = name != "input-file"
        if path is not None and not (path.is_file() or (folder_ok and path.is_dir())):
            what = "a file or folder" if folder_ok else "a file"
            raise ProfileError(
                f"{profile.path}: key 'bench.{name}': {rel!r} is not {what} of the project ({path} does not exist)",
                hint="a path relative to the folder holding profiles/",
            )
        files[name] = path
    return Workload(
        command=tuple(shlex.split(text)),
        seconds=b.input_seconds,
        rate=b.input_rate,
        channels=b.input_channels,
        input_file=files["input-file"],
        config=files["config"],
        checkpoint=files["checkpoint"],
    )


def write_wav(path: Path, *, seconds: float, rate: int, channels: int, seed: int = 0) -> None:
    """16-bit PCM music-like test audio (a few partials and noise), the same bytes for the same arguments."""
    rng = random.Random(seed)
    n = round(seconds * rate)
    partials = [(110.0 * k, 0.25 / k) for k in (1, 2, 3, 5)]
    frames = bytearray()
    for i in range(n):
        t = i / rate
        tone = sum(a * math.sin(2 * math.pi * f * t) for f, a in partials)
        for c in range(channels):
            sample = tone * (1.0 - 0.3 * c) + 0.05 * (rng.random() * 2 - 1)
            frames += struct.pack("<h", max(-32767, min(32767, round(sample * 32767))))
    tmp = path.with_name(temp_file_name(path, "wav"))
    with wave.open(str(tmp), "wb") as fh:
        fh.setnchannels(channels)
        fh.setsampwidth(2)
        fh.setframerate(rate)
        fh.writeframes(bytes(frames))
    tmp.replace(path)


def imports_of(probe: dict[str, Any]) -> dict[str, Any]:
    """The probe's import times in the shape bench and compare use for `-X importtime` (pure)."""
    imp = probe["imports"]
    return {
        "total_s": imp["total_s"],
        "modules": imp["modules"],
        "slowest_modules": [
            {
                "module": m["module"],
                "self_ms": round(m["self_s"] * 1000, 2),
                "cumulative_ms": round(m["cumulative_s"] * 1000, 2),
            }
            for m in imp["slowest"]
        ],
        "by_package_ms": {k: round(v * 1000, 2) for k, v in imp["by_package"].items() if v >= 5e-4},
    }


def run_figures(res: ProcessResult, probe: dict[str, Any] | None, seconds: float) -> dict[str, Any]:
    """One workload run's figures: the process's from the runner, the rest from its probe (pure)."""
    run: dict[str, Any] = {
        "total_s": round(res.wall_s, 4),
        "rtf": round(res.wall_s / seconds, 4) if seconds else None,
        "cores_busy": round(res.cpu_s / res.wall_s, 2) if res.cpu_s is not None and res.wall_s else None,
        "cores_busy_source": "builder (psutil), whole process",
        "process_cpu_s": round(res.cpu_s, 3) if res.cpu_s is not None else None,
        "peak_rss_mb": res.peak_rss_mb,
        "os_threads": res.os_threads,
    }
    if probe is not None:
        pools = probe["threadpools"]
        run.update({
            "import_s": probe["imports"]["total_s"],
            "import_source": "probe (the freeze's runtime hook)",
            "imports": imports_of(probe),
            "threads": probe["threads"],
            "matmul_precision": probe["matmul_precision"],
            "env": probe["env"],
            "openmp_loaded": loaded_runtimes(pools),
            "threadpools": pools,
            "versions": probe["versions"],
            "config_source": probe["config_source"],
        })  # fmt: skip
    return run


def run_workload(
    argv_prefix: list[str],
    env: dict[str, str],
    workload: Workload,
    workdir: Path,
    *,
    timeout: float,
    stall: float,
    inherit_env: bool = False,
    thread_affinity: bool = False,
) -> tuple[ProcessResult, Path]:
    """One run of the workload in `workdir` (its input, output and probe there), with the freeze's
    probe on; returns the runner's result and where the probe is written (absent if it wrote none).
    The runner's options pass through (the doctor's: the app's environment as is, thread affinity)."""
    argv = workload.render(argv_prefix, workdir)
    probe_path = workdir / "probe.json"
    res = run_monitored(
        argv,
        env={**env, PROBE_ENV: str(probe_path)},
        timeout=timeout,
        stall=stall,
        cwd=workdir,
        inherit_env=inherit_env,
        thread_affinity=thread_affinity,
    )
    return res, probe_path


def measure_workload(
    argv_prefix: list[str], env: dict[str, str], workload: Workload, *, timeout: float, stall: float
) -> dict[str, Any]:
    """One run of the workload in a fresh process. Never raises on a hang or a failure: the run says so."""
    with tempfile.TemporaryDirectory(prefix="builder-workload-") as tmp:
        work = Path(tmp)
        res, probe_path = run_workload(argv_prefix, env, workload, work, timeout=timeout, stall=stall)
        run: dict[str, Any] = {"hung": None, "command": list(res.argv)}
        if res.killed:
            run["hung"] = f"workload: {res.killed}"
            return run
        if res.returncode != 0:
            tail = (
                " | ".join(ln.strip() for ln in res.stderr.splitlines()[-3:] if ln.strip()) or "(no output)"
            )
            run["failed"] = f"workload exited {res.returncode}: {tail}"
            return run
        outputs = sorted(
            p.relative_to(work / "output").as_posix() for p in (work / "output").rglob("*") if p.is_file()
        )
        probe = None
        if probe_path.is_file():
            probe = json.loads(probe_path.read_text(encoding="utf-8"))
            found = violations(probe, "probe")
            if found:
                run["failed"] = f"probe does not follow probe.schema.json: {found[0]}"
                return run
        run.update(run_figures(res, probe, workload.seconds))
        run["outputs"] = outputs
        return run
