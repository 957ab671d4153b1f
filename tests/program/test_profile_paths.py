"""Paths in a profile are relative to the project folder (one profile for every machine), and a
[bench] placeholder may name a folder (a model folder) as well as a file."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import assert_one_line_error, run_builder, team_profile

from builder.errors import ProfileError
from builder.measure.take.workload import workload_of
from builder.profile import load_profile


def _project(tmp_path: Path, bench: str) -> Path:
    (tmp_path / "profiles").mkdir(exist_ok=True)
    text = team_profile("app/sep.py").replace('command = "{program} {input} {output}"', bench)
    (tmp_path / "profiles/p.toml").write_text(text)
    return tmp_path


def test_a_model_folder_is_a_placeholder(tmp_path: Path) -> None:
    project = _project(
        tmp_path, 'command = "{program} --model {checkpoint} --config {config} {input} {output}"\n'
        'checkpoint = "models/htdemucs"\nconfig = "models/htdemucs/config.yaml"'
    )  # fmt: skip
    (project / "models/htdemucs").mkdir(parents=True)
    (project / "models/htdemucs/config.yaml").write_text("a: 1\n")
    work = workload_of(load_profile("p", project / "profiles"), project)
    assert work is not None and work.checkpoint == project / "models/htdemucs"
    argv = work.render(["sep"], tmp_path / "run")
    assert argv[:5] == ["sep", "--model", str(project / "models/htdemucs"), "--config",
                        str(project / "models/htdemucs/config.yaml")]  # fmt: skip


def test_the_input_file_must_still_be_a_file(tmp_path: Path) -> None:
    project = _project(tmp_path, 'command = "{program} {input}"\ninput-file = "audio"')
    (project / "audio").mkdir()
    with pytest.raises(ProfileError, match=r"'bench\.input-file': 'audio' is not a file of the project"):
        workload_of(load_profile("p", project / "profiles"), project)


@pytest.mark.parametrize(
    ("line", "key", "why"),
    [
        ('checkpoint = "/home/ana/models/htdemucs"', "bench.checkpoint", "absolute path"),
        ('config = "C:/Users/ana/model.yaml"', "bench.config", "absolute path"),
        ('input-file = "~/song.wav"', "bench.input-file", "starts with ~"),
        ('checkpoint = "../models/x.ckpt"', "bench.checkpoint", "leaves the project"),
    ],
)
def test_a_path_of_one_machine_is_one_line_naming_the_key(
    tmp_path: Path, line: str, key: str, why: str
) -> None:
    project = _project(tmp_path, f'command = "{{program}} {{input}}"\n{line}')
    proc = run_builder("profiles", root=project)
    assert_one_line_error(proc, 2, "p.toml", f"'{key}'", why, "relative to the folder holding profiles/")
