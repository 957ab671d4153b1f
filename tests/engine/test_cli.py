"""`stems separate` / `bench` end to end, in a subprocess as users run it."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest
import soundfile as sf

from .conftest import ROOT, stems_env


def test_separate_writes_every_stem_with_the_inputs_length_and_rate(stems, write_audio, tmp_path):
    wav = write_audio("song.wav", seconds=1.2, rate=44100)
    flac = write_audio("voice.flac", seconds=0.9, rate=48000, channels=1)
    ogg = write_audio("loop.ogg", seconds=0.7, rate=22050, format="OGG", subtype="VORBIS")
    out = tmp_path / "out"
    r = stems("separate", str(wav), str(flac), str(ogg), "-o", str(out), "--model", "tiny", "--json")
    assert r.returncode == 0, r.stderr
    results = [json.loads(line) for line in r.stdout.splitlines()]
    assert [res["untrained"] for res in results] == [True, True, True]
    assert "UNTRAINED" in r.stderr and "chunks" in r.stderr  # warning and progress on stderr
    for src, res in zip((wav, flac, ogg), results, strict=True):
        info = sf.info(str(src))
        assert sorted(res["outputs"]) == ["bass", "drums", "other", "vocals"]
        for stem in ("drums", "bass", "other", "vocals"):
            got = sf.info(str(out / src.stem / f"{stem}.wav"))
            assert (got.frames, got.samplerate, got.channels) == (info.frames, info.samplerate, info.channels)
            assert "UNTRAINED" in sf.SoundFile(str(out / src.stem / f"{stem}.wav")).comment
    assert not list(out.rglob(".*partial*"))


def test_separate_chosen_stems_as_flac_with_engine_flags(stems, write_audio, tmp_path):
    wav = write_audio("a.wav", seconds=0.6)
    r = stems(
        "separate",
        str(wav),
        "-o",
        str(tmp_path / "o"),
        "--model",
        "tiny",
        "--stems",
        "vocals",
        "bass",
        "--format",
        "flac",
        "--threads",
        "1",
        "--interop-threads",
        "1",
        "--precision",
        "high",
        "--batch-size",
        "3",
        "--overlap",
        "4",
        "-q",
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "o" / "a").iterdir()) == ["bass.flac", "vocals.flac"]
    assert (
        r.stderr.strip()
        == "stems: warning: UNTRAINED: model tiny has seeded random weights (seed 20240); the output is not a real separation"
    )


def test_errors_are_one_line_with_a_distinct_exit_code(stems, write_audio, tmp_path):
    good = write_audio("ok.wav", seconds=0.3)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    victim = tmp_path / "out" / "vocals" / "vocals.wav"  # where the vocals stem of "vocals.wav" would go
    victim.parent.mkdir(parents=True)
    victim.write_bytes(good.read_bytes())
    cases = {
        3: ("separate", str(tmp_path / "missing.wav"), "-o", str(tmp_path / "x"), "--model", "tiny"),
        4: ("separate", str(good), "-o", str(tmp_path / "x"), "--model", "tiny_mell"),
        5: (
            "separate",
            str(good),
            "-o",
            str(tmp_path / "x"),
            "--model",
            "tiny",
            "--checkpoint",
            str(corrupt),
        ),
        6: ("separate", str(victim), "-o", str(tmp_path / "out"), "--model", "tiny", "--stems", "vocals"),
        2: ("separate", str(good), "-o", str(tmp_path / "x"), "--model", "tiny", "--stems", "piano"),
    }
    for code, args in cases.items():
        r = stems(*args)
        lines = [ln for ln in r.stderr.splitlines() if "UNTRAINED" not in ln]
        assert r.returncode == code, (args, r.stderr)
        assert len(lines) == 1 and lines[0].startswith("stems: error: "), r.stderr
        assert "Traceback" not in r.stderr
    r = stems("separate", str(corrupt), "-o", str(tmp_path / "x"), "--model", "tiny")
    assert r.returncode == 3 and "not a readable audio file" in r.stderr
    assert victim.read_bytes() == good.read_bytes()  # the input was not touched


def test_command_line_parsing_does_not_import_torch():
    code = (
        "import sys; from runtime_entry.main import COMMANDS, build_parser\n"
        "for name in COMMANDS: build_parser(name)[0].parse_args([name] + "
        "(['x', '-o', 'y'] if name == 'separate' else []))\n"
        "print('torch' in sys.modules)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=stems_env(), capture_output=True, text=True
    )
    assert r.stdout.strip() == "False", r.stderr


def test_selftest_imports_neither_main_from_commands_nor_the_other_commands():
    # bench imports POSIX-only modules at its top: `stems selftest` must work without it
    code = (
        "import sys, runtime_entry.main as m; rc = m.main(['selftest', '--json'])\n"
        "others = [n for n in ('bench', 'separate', 'worker', 'engine') if 'runtime_entry.' + n in sys.modules]\n"
        "print(rc, others, file=sys.stderr)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=stems_env(), capture_output=True, text=True, timeout=120
    )
    assert r.stderr.strip().splitlines()[-1] == "0 []", r.stderr
    assert json.loads(r.stdout)["threads"]
    for module in ("separate", "worker", "cli_common", "audio", "engine"):
        assert "from .main" not in (ROOT / "runtime_entry" / f"{module}.py").read_text()


def test_bench_reports_speed_and_resources_as_json(stems):
    r = stems("bench", "--model", "tiny", "--seconds", "1", "--json", "--threads", "2")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["untrained"] is True and data["chunks"] == data["expected_chunks"] > 0
    for key in ("realtime_factor", "seconds_per_chunk", "cpu_utilisation", "peak_rss_mb", "wall_seconds"):
        assert data[key] > 0, key
    assert data["threads"]["intra_op"] == 2 and data["env"]["OMP_NUM_THREADS"] == "2"
    # every chunk timed (a batch's time split over its chunks), after the untimed warm-up chunk
    times = data["chunk_seconds"]
    assert len(times) == data["chunks"] and all(t > 0 for t in times)
    # chunk_seconds are rounded to 4 places, the median from the unrounded times: equal within rounding
    assert data["median_chunk_seconds"] == pytest.approx(statistics.median(times), abs=1e-4)
    assert sum(times) <= data["wall_seconds"] + 0.01 and data["warmup_seconds"] > 0


LIGHT_YAML = """\
model: {dim: 16, depth: 1, stereo: true, num_stems: 2, time_transformer_depth: 1, freq_transformer_depth: 1,
        freqs_per_bands: [1, 64, 64, 64, 64, 64, 64, 64, 64], dim_head: 8, heads: 2, stft_n_fft: 1024,
        stft_hop_length: 512, stft_win_length: 1024, mask_estimator_depth: 1, mlp_expansion_factor: 1}
audio: {chunk_size: 131072, sample_rate: 44100}
inference: {batch_size: 1, num_overlap: 2}
training: {instruments: [a, b]}
"""


@pytest.mark.slow
def test_peak_memory_of_a_10_minute_file_is_within_10_percent_of_a_1_minute_file(stems, tmp_path):
    config = tmp_path / "light.yaml"
    config.write_text(LIGHT_YAML)
    peaks = {}
    for seconds in (60, 600):
        r = stems(
            "bench", "--model", str(config), "--seconds", str(seconds), "--json", "--no-warmup", timeout=1500
        )
        assert r.returncode == 0, r.stderr
        peaks[seconds] = json.loads(r.stdout)["peak_rss_mb"]
    assert peaks[600] <= peaks[60] * 1.10, peaks


def test_sample_formats_and_the_instrumental_as_msst_extracts_it(stems, write_audio, tmp_path):
    wav = write_audio("mix.wav", seconds=0.7, rate=48000)
    out = tmp_path / "o"
    base = ("separate", str(wav), "-o", str(out), "--model", "tiny", "-q")
    r = stems(*base, "--stems", "drums", "--instrumental", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert sorted(result["outputs"]) == ["drums", "instrumental"]  # vocals computed, not written
    r = stems(*base, "--stems", "vocals")
    assert r.returncode == 0, r.stderr
    mix = sf.read(str(wav), dtype="float32")[0]
    vocals = sf.read(str(out / "mix" / "vocals.wav"), dtype="float32")[0]
    instrumental = sf.read(str(out / "mix" / "instrumental.wav"), dtype="float32")[0]
    assert (
        instrumental.shape == mix.shape and sf.info(str(out / "mix" / "instrumental.wav")).subtype == "FLOAT"
    )
    assert abs(instrumental - (mix - vocals)).max() < 1e-6  # mix minus vocals, sample for sample
    r = stems(
        *base, "--instrumental-of", "bass", "--stems", "bass", "--format", "flac", "--sample-format", "pcm16"
    )
    assert r.returncode == 0, r.stderr
    for name in ("bass", "instrumental"):
        assert sf.info(str(out / "mix" / f"{name}.flac")).subtype == "PCM_16"
    bass = sf.read(str(out / "mix" / "bass.flac"), dtype="float32")[0]
    inst = sf.read(str(out / "mix" / "instrumental.flac"), dtype="float32")[0]
    assert abs(inst - (mix - bass)).max() < 2.5 / 32768  # two 16-bit roundings
    for sample_format, subtype in (("pcm24", "PCM_24"), ("pcm16", "PCM_16"), ("float", "FLOAT")):
        r = stems(*base, "--stems", "other", "--sample-format", sample_format)
        assert r.returncode == 0 and sf.info(str(out / "mix" / "other.wav")).subtype == subtype, r.stderr
    r = stems(*base, "--format", "flac", "--sample-format", "float")
    assert r.returncode == 2 and r.stderr.strip() == (
        "stems: error: sample format 'float' is not available for flac (flac takes pcm24, pcm16)"
    )
    r = stems(*base, "--instrumental-of", "piano")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith(
        "stems: error: unknown stem 'piano'"
    )
