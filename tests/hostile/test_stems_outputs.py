"""Output paths are safe by construction, and a failing job never removes a file it did not create.

In-process with the `tiny` preset (real files, real writers); the refusals that come before
torch is imported run through the program, where they cost a fraction of a second.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from engine.conftest import tone

from runtime_entry.audio import StemWriter, commit_all, remove_leftovers
from runtime_entry.engine import Engine, LoadedModel, separate_file
from runtime_entry.errors import InputError, ModelConfigError, OutputError, UsageError
from runtime_entry.models import resolve_spec
from runtime_entry.models.spec import PRESETS
from runtime_entry.outputs import job_folder

from .conftest import assert_one_line, partials, run_stems


@pytest.fixture(scope="module")
def tiny_model() -> LoadedModel:
    return Engine().load("tiny")


def _audio(path: Path, seconds: float = 0.2, channels: int = 2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(seconds, 44100, channels), 44100, format="WAV", subtype="FLOAT")
    return path


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def earlier(tmp_path: Path) -> Path:
    """An output folder holding an earlier run's stems for `song.wav` (and the input)."""
    song = tmp_path / "out" / "song"
    song.mkdir(parents=True)
    for name in ("vocals", "drums", "bass", "other"):
        (song / f"{name}.wav").write_bytes(f"earlier {name}".encode())
    return tmp_path / "out"


# -- class 1: duplicate stems are refused before any file is touched ------------------------------


@pytest.mark.parametrize("stems", [["vocals", "vocals"], ["vocals", "VOCALS"], ["drums", "vocals", "drums"]])
def test_a_stem_named_twice_is_refused_and_the_earlier_stems_stay(
    tiny_model: LoadedModel, tmp_path: Path, earlier: Path, stems: list[str]
) -> None:
    wav = _audio(tmp_path / "in" / "song.wav")
    before = _tree(earlier)
    with pytest.raises(UsageError, match="named twice"):
        separate_file(tiny_model, wav, earlier, stems=stems)
    assert _tree(earlier) == before and partials(earlier) == []


def test_the_program_refuses_a_stem_named_twice_before_loading_anything(
    tmp_path: Path, earlier: Path
) -> None:
    wav = _audio(tmp_path / "in" / "song.wav")
    before = _tree(earlier)
    proc = run_stems("separate", wav, "-o", earlier, "--model", "tiny", "--stems", "vocals", "vocals", "-q")
    assert_one_line(proc, UsageError.exit_code, "'vocals' is named twice")
    assert _tree(earlier) == before


def test_an_empty_stem_list_is_an_error_not_all_stems(tiny_model: LoadedModel, tmp_path: Path) -> None:
    wav = _audio(tmp_path / "in" / "song.wav")
    with pytest.raises(UsageError, match="stem list is empty"):
        separate_file(tiny_model, wav, tmp_path / "out", stems=[])
    assert not (tmp_path / "out").exists()


def _writers(folder: Path, names: list[str]) -> list[StemWriter]:
    writers = [StemWriter(folder / f"{n}.wav", 44100, 2, "wav", protect=[]) for n in names]
    for w in writers:
        w.write(np.zeros((2, 100), dtype=np.float32))
    return writers


def test_a_failed_commit_puts_back_every_file_it_replaced(earlier: Path) -> None:
    before = _tree(earlier)
    writers = _writers(earlier / "song", ["vocals", "drums", "bass"])
    writers[2].fh.close()
    writers[2].tmp.unlink()  # the last stem's file vanishes before its rename: that rename fails
    with pytest.raises(OutputError, match=r"bass\.wav: cannot rename into place"):
        commit_all(writers)
    assert _tree(earlier) == before  # vocals and drums were replaced, then put back
    assert partials(earlier) == [] and not [p for p in (earlier / "song").iterdir() if p.name.startswith(".")]


def test_a_successful_commit_leaves_no_kept_files(earlier: Path) -> None:
    commit_all(_writers(earlier / "song", ["vocals", "drums"]))
    assert sorted(p.name for p in (earlier / "song").iterdir()) == [
        "bass.wav",
        "drums.wav",
        "other.wav",
        "vocals.wav",
    ]
    assert (earlier / "song" / "bass.wav").read_bytes() == b"earlier bass"
    assert sf.info(str(earlier / "song" / "vocals.wav")).frames == 100


DEAD_PID = 2**22 + 12345  # above Linux's pid_max default: no process has it


def test_a_kept_file_whose_stem_never_arrived_is_put_back_by_the_next_run(tmp_path: Path) -> None:
    song = tmp_path / "out" / "song"
    song.mkdir(parents=True)
    (song / f".vocals.{DEAD_PID}.previous.wav").write_bytes(b"earlier vocals")  # killed between renames
    remove_leftovers(song)
    assert _tree(song) == {"vocals.wav": b"earlier vocals"}


def test_a_kept_file_whose_stem_arrived_is_removed_by_the_next_run(tmp_path: Path) -> None:
    song = tmp_path / "out" / "song"
    song.mkdir(parents=True)
    (song / "vocals.wav").write_bytes(b"new vocals")
    (song / f".vocals.{DEAD_PID}.previous.wav").write_bytes(b"earlier vocals")
    (song / f".drums.{DEAD_PID}.partial.wav").write_bytes(b"half")
    remove_leftovers(song)
    assert _tree(song) == {"vocals.wav": b"new vocals"}


# -- class 2: an input's name never climbs out of the output folder -----------------------------


@pytest.mark.parametrize("name", ["...wav", "..wav", "....wav", "...flac"])
def test_an_input_whose_name_is_only_dots_is_refused(
    tiny_model: LoadedModel, tmp_path: Path, name: str
) -> None:
    wav = _audio(tmp_path / "in" / name)
    out = tmp_path / "area" / "out"
    out.mkdir(parents=True)
    with pytest.raises(InputError, match="names no folder of its own"):
        separate_file(tiny_model, wav, out)
    assert _tree(tmp_path / "area") == {}  # nothing in OUT, nothing in its parent


@pytest.mark.parametrize("name", [".wav", "a..wav", "..a.wav", "song.tar.wav", " .wav"])
def test_unusual_input_names_get_a_folder_inside_the_output_folder(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    folder = job_folder(out, tmp_path / name)
    assert folder.parent == out and os.path.realpath(folder).startswith(os.path.realpath(out) + os.sep)


def test_a_job_with_a_dotted_name_still_writes_its_own_folder(
    tiny_model: LoadedModel, tmp_path: Path
) -> None:
    wav = _audio(tmp_path / "in" / "..a.wav")
    result = separate_file(tiny_model, wav, tmp_path / "out", stems=["vocals"])
    assert result["outputs"] == {"vocals": str(tmp_path / "out" / "..a" / "vocals.wav")}


def _pair(tmp_path: Path, first: str, second: str) -> tuple[Path, Path]:
    return _audio(tmp_path / "a" / first), _audio(tmp_path / "b" / second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("song.wav", "song.flac"),
        ("Song.wav", "song.wav"),
        (unicodedata.normalize("NFC", "café.wav"), unicodedata.normalize("NFD", "café.wav")),
    ],
    ids=["same name", "case aside", "unicode normalisation aside"],
)
def test_two_inputs_that_would_share_a_folder_are_refused_before_any_work(
    tmp_path: Path, first: str, second: str
) -> None:
    a, b = _pair(tmp_path, first, second)
    out = tmp_path / "out"
    proc = run_stems("separate", a, b, "-o", out, "--model", "tiny", "-q", "--json")
    assert_one_line(proc, UsageError.exit_code, str(a), str(b), "would both write into")
    assert proc.stdout == "" and not out.exists()


def test_the_same_input_twice_is_refused(tmp_path: Path) -> None:
    wav = _audio(tmp_path / "song.wav")
    proc = run_stems("separate", wav, wav, "-o", tmp_path / "out", "--model", "tiny", "-q")
    assert_one_line(proc, UsageError.exit_code, "would both write into")


# -- stem names come from model configs: each one a plain file name, once -----------------------


@pytest.mark.parametrize(
    "instruments",
    [
        ["../evil", "b", "c", "d"],
        ["a/b", "b", "c", "d"],
        ["a\\b", "b", "c", "d"],
        ["", "b", "c", "d"],
        ["..", "b", "c", "d"],
        ["x\ny", "b", "c", "d"],
        ["vocals", "vocals", "c", "d"],
        ["Vocals", "vocals", "c", "d"],
    ],
    ids=["climbs", "slash", "backslash", "empty", "dots", "newline", "twice", "twice up to case"],
)
def test_a_model_config_whose_stem_names_are_not_plain_file_names_is_refused(
    tmp_path: Path, instruments: list[str]
) -> None:
    config = {**PRESETS["tiny"], "training": {"instruments": instruments}}
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ModelConfigError, match=r"training\.instruments") as caught:
        resolve_spec(str(path))
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
