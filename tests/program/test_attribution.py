"""compare's 'where the difference comes from': imports by package, the rest, settings, packages."""

from __future__ import annotations

from typing import Any

from builder.measure.judge.attribution import attribution


def _result(threads_b: int = 2) -> dict[str, Any]:
    return {
        "summary": {
            "a": {"total_s": {"median": 4.0}, "import_s": {"median": 1.5}},
            "b": {"total_s": {"median": 6.5}, "import_s": {"median": 3.5}},
        },
        "imports": {
            "top_differences": [
                {"package": "pytorch_lightning", "diff_ms": 1200.0},
                {"package": "onnxruntime", "diff_ms": 600.0},
                {"package": "json", "diff_ms": 1.0},
            ]
        },
        "threading": [
            {
                "setting": "intra-op threads (torch.get_num_threads)",
                "a": 2,
                "b": threads_b,
                "same": threads_b == 2,
            },
            {
                "setting": "runtime settings from",
                "a": "/a/runtime.json",
                "b": "/b/runtime.json",
                "same": False,
            },
        ],
        "openmp_loaded": {"a": [{"path": "/x/libgomp.so.1"}], "b": [{"path": "/y/libgomp.so.1"}]},
        "packages": {
            "only_in_a": [],
            "only_in_b": [
                {"name": "onnxruntime", "size_b": 40_000_000},
                {"name": "torchmetrics", "size_b": 5_000_000},
            ],
        },
    }


def test_the_difference_is_split_into_imports_by_package_and_the_rest() -> None:
    lines = attribution(_result())
    assert lines[0].startswith("B's process takes +2.50 s")
    assert "Imports: +2.00 s" in lines[1] and "pytorch_lightning +1200 ms, onnxruntime +600 ms" in lines[1]
    assert "json" not in lines[1]  # under 20 ms: not named
    assert "+0.50 s" in lines[2]
    assert "are the same" in lines[3]  # where the settings were read from is not a difference
    assert lines[-1].startswith("B carries 2 packages A does not (45 MB): onnxruntime, torchmetrics")


def test_a_setting_that_differs_is_named() -> None:
    lines = attribution(_result(threads_b=1))
    assert any("intra-op threads (torch.get_num_threads): A 2, B 1" in line for line in lines)
