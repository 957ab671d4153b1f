"""The rule book's causes that a Linux test machine cannot plant, through the one function that reads
each OS fact, fed the values that OS documents; the report's redaction and closing figure (fast)."""

from __future__ import annotations

from typing import Any

import pytest

from runtime_doctor import host, report, rules

# What `pmset -g therm` prints on a Mac the OS is throttling (Apple's pmset(1); CPU_Speed_Limit in %).
PMSET_THROTTLED = """Note: No thermal warning level has been recorded
Note: No performance warning level has been recorded
2024-05-02 10:11:12 +0200 CPU Power notify
\tCPU_Scheduler_Limit \t= 100
\tCPU_Available_CPUs \t= 8
\tCPU_Speed_Limit \t= 52
"""
X86_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model\t\t: 17
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse sse2 avx avx2 avx512f avx512_bf16 amx_tile
"""
ARM64_CPUINFO = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp bf16
CPU implementer\t: 0x41
"""
MEMINFO = """MemTotal:       16384000 kB
MemFree:          200000 kB
MemAvailable:     800000 kB
SwapTotal:       4096000 kB
SwapFree:        2048000 kB
"""


def facts(**change: Any) -> dict[str, Any]:
    base = {"usable_cpus": 4, "host_cpus": 4, "cpu_mask": [0, 1, 2, 3], "threads": 4, "interop": 1, "openmp": [],
            "env_parent": {}, "settings_calls": [], "stems": True}  # fmt: skip
    return {**base, **change}


def ids(f: dict[str, Any]) -> list[str]:
    return [c["id"] for c in rules.find_causes(f)[0]]


def test_rosetta_is_read_from_sysctl_proc_translated() -> None:
    assert host.rosetta("1\n") is True and host.rosetta("0") is False
    assert host.rosetta(None) is None  # an Intel Mac: the sysctl does not exist
    translated = {"kind": "rosetta", "evidence": "sysctl.proc_translated = 1"}
    assert ids(facts(translation=translated)) == ["translated"]


def test_windows_on_arm_emulation_is_read_from_iswow64process2() -> None:
    assert host.windows_emulated(0xAA64, "AMD64") is True
    assert host.windows_emulated(0xAA64, "ARM64") is False and host.windows_emulated(0x8664, "AMD64") is False
    assert host.windows_emulated(None, "AMD64") is None
    emulated = {"kind": "windows-arm-emulation", "evidence": "IsWow64Process2 nativeMachine = 0xAA64 (ARM64)"}
    (c,), _ = rules.find_causes(facts(translation=emulated))
    assert c["id"] == "translated" and "windows-arm64" in c["fix"]


def test_a_macos_thermal_limit_is_power_limited() -> None:
    assert host.parse_pmset_therm(PMSET_THROTTLED) == 52
    assert host.parse_pmset_therm("Note: No thermal warning level has been recorded\n") is None
    assert ids(facts(power={"cpu_speed_limit": 52, "source": "pmset -g therm"})) == ["power-limited"]
    assert ids(facts(power={"cpu_speed_limit": 100, "source": "pmset -g therm"})) == []
    assert host.parse_power_supplies({"AC": "0\n"}) is True and host.parse_power_supplies({}) is None
    assert rules.find_causes(facts(power={"on_battery": True})) == (
        [],
        ["on battery: the OS may lower the CPU's speed"],
    )


def test_instruction_sets_from_each_os() -> None:
    model, flags = host.parse_cpuinfo(X86_CPUINFO)
    assert model == "AMD EPYC 9R14" and host.engine_isa(flags) == ["avx2", "avx512", "avx512_bf16", "amx"]
    assert host.engine_isa(host.parse_cpuinfo(ARM64_CPUINFO)[1]) == ["neon", "arm_bf16"]
    mac = {"machdep.cpu.brand_string": "Apple M2", "hw.optional.arm.FEAT_BF16": "1", "hw.optional.neon": "1"}
    assert host.parse_sysctl(mac) == ("Apple M2", {"hw.optional.arm.FEAT_BF16", "hw.optional.neon"})


@pytest.mark.parametrize(
    ("have", "precision", "expected"),
    [
        (["avx2"], "highest", ["missing-isa"]),  # AVX-512 gone: fp32 kernels narrower
        (["avx2", "avx512"], "highest", []),  # only bf16 gone, unused at "highest": a note
        (["avx2", "avx512"], "medium", ["missing-isa"]),  # bf16 gone and asked for
    ],
)
def test_missing_instruction_sets_against_the_build_machine(
    have: list[str], precision: str, expected: list[str]
) -> None:
    f = facts(isa=have, build_isa=["avx2", "avx512", "avx512_bf16"], precision=precision)
    assert ids(f) == expected


def test_memory_pressure_and_swap() -> None:
    mem = host.parse_meminfo(MEMINFO)
    assert mem == {"total_mb": 16000, "available_mb": 781, "swap_total_mb": 4000, "swap_used_mb": 2000}
    assert ids(facts(memory=mem)) == ["memory-pressure"]
    assert ids(facts(memory={**mem, "available_mb": 8000, "swap_used_mb": 0})) == []


def test_cgroup_quota_v1_and_v2() -> None:
    assert host.parse_cfs("50000\n", "100000\n") == 0.5 and host.parse_cfs("-1", "100000") is None
    files = host.cgroup_files("12:cpu,cpuacct:/docker/abc\n0::/user.slice\n")
    assert [p.name for p in files[0]] == ["cpu.cfs_quota_us", "cpu.cfs_period_us"]
    assert str(files[0][0]).startswith("/sys/fs/cgroup/cpu,cpuacct/docker/abc")
    assert str(files[1][0]) == "/sys/fs/cgroup/user.slice/cpu.max"
    assert host.usable_cpus(4, [0, 1, 2, 3], 1.5) == 2 and host.usable_cpus(4, [2], None) == 1


def test_a_cpu_mask_is_named_even_when_the_threads_fit_it() -> None:
    (c,), _ = rules.find_causes(facts(cpu_mask=[0], usable_cpus=1, threads=1))
    assert c["id"] == "cpu-limit" and c["title"] == "the process may use 1 of the machine's 4 CPUs"


def test_busy_neighbours_and_slow_imports() -> None:
    assert ids(facts(others_busy_cores=2.5)) == ["busy-cores"]
    assert ids(facts(others_busy_cores=0.4)) == []
    # with the build's fingerprint: busy neighbours that did not slow the calibration are no cause
    timed = {"others_busy_cores": 2.5, "build_calibration_s": 0.5, "build_usable_threads": 4}
    assert ids(facts(**timed, calibration_s=0.55)) == [] and ids(facts(**timed, calibration_s=1.2)) == [
        "busy-cores"
    ]
    assert ids(facts(imports_torch_s=9.0, build_imports_torch_s=1.5)) == ["slow-imports"]
    assert ids(facts(imports_torch_s=2.0, build_imports_torch_s=1.5)) == []
    # with the cores taken by others, a slow import is theirs: one cause, the import a note
    causes, notes = rules.find_causes(
        facts(imports_torch_s=9.0, build_imports_torch_s=1.5, others_busy_cores=2.5)
    )
    assert [c["id"] for c in causes] == ["busy-cores"] and "with the cores busy" in notes[0]


def test_the_closing_figure_compares_with_what_cores_and_isa_explain() -> None:
    f = facts(calibration_s=0.9, build_calibration_s=0.1, build_usable_threads=8, threads=4, isa=["avx2"],
              build_isa=["avx2", "avx512"])  # fmt: skip
    e = rules.explained(f)
    assert e is not None and e["slower"] == 9.0 and e["explained"] == 3.0  # 8/4 cores x 1.5 for AVX-512
    assert e["text"].startswith(
        "this machine runs the calibration 9.00x slower than the build machine, against the 3.00x"
    )
    assert rules.explained(facts()) is None
    rows = [{"tid": 1, "affinity": [0], "pinned": True}, {"tid": 2, "affinity": [0], "pinned": True}]
    pinned = rules.explained({**f, "isa": ["avx2", "avx512"], "thread_rows": rows})
    assert pinned is not None and pinned["explained"] == 8.0  # 8 threads at the build, 1 CPU here


def test_redaction_takes_home_user_and_host_out() -> None:
    doc = {"a": "/home/alice/app/stems", "b": ["alice@laptop-7"], "laptop-7": 1}
    red = report.redact(doc, {"/home/alice": "~", "alice": "<user>", "laptop-7": "<host>"})
    assert red == {"a": "~/app/stems", "b": ["<user>@<host>"], "<host>": 1}


def test_the_text_report_names_identity_causes_and_the_closing_figure() -> None:
    f = facts(cpu_mask=[0], usable_cpus=1, threads=1)
    causes, notes = rules.find_causes(f)
    doc = {"program": "stems", "runtime": {"profile": "p", "dist_sha256": "sha256:ab", "build_date": "2026-12-06"},
           "verdict": "1 cause(s) found: cpu-limit", "causes": causes, "notes": notes,
           "closing": {"text": "this machine runs the calibration 2.00x slower"}, "figures": f, "redacted": True}  # fmt: skip
    text = report.render_text(doc)
    assert "profile p, dist sha256:ab, built 2026-12-06" in text and "[cpu-limit]" in text
    assert "this machine runs the calibration 2.00x slower" in text and "(redacted" in text
