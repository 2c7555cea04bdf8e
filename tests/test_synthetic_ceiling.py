"""bench/synthetic_ceiling.py end to end at toy size: both models train on the same decoded clips and report."""

from pathlib import Path

from tests.bench_scripts import load_bench
from tests.process_state import torch_threads


def test_ceiling_bench_trains_both_models_and_reports_ratios(tmp_path: Path, capsys) -> None:
    bench = load_bench("synthetic_ceiling")
    args = ["--out", str(tmp_path), "--num-train", "8", "--num-val", "6", "--seconds", "1", "--threads", "1"]
    with torch_threads():
        results = bench.main(args)
    for model in ("ceiling", "ovmlv"):
        assert set(results[model]) == {"entity", "scene"}
        assert all(0.0 < value <= 1.0 for value in results[model].values())
    assert results["ovmlv / ceiling"]["entity"] == round(results["ovmlv"]["entity"] / results["ceiling"]["entity"], 3)
    printed = capsys.readouterr().out
    assert "8 train / 6 val videos" in printed and "ovmlv / ceiling" in printed
