"""bench/label_side_headroom.py at toy size: every label side starts at the class names and the table has each run."""

from pathlib import Path

import torch

from ovmlv.organism.world import SyntheticConfig, generate_dataset
from tests.bench_scripts import load_bench
from tests.process_state import torch_threads


def test_every_label_side_starts_at_the_class_names_and_each_run_is_reported(tmp_path: Path, capsys) -> None:
    bench = load_bench("label_side_headroom")
    data = tmp_path / "data"
    generate_dataset(data, SyntheticConfig(num_train=12, num_val=6, num_heldout=1), progress=False)
    with torch_threads():
        features = bench.frozen_features(data, tmp_path / "out" / "features.pt")
        for side in ("free", "common", "shared", "centred"):
            untrained = bench.fit_label_side(features, side, lr=1e-2, classes_per_video=4, steps=0, seed=0)
            torch.testing.assert_close(untrained, features["label_embeds"], rtol=0, atol=1e-6)
        trained = bench.fit_label_side(features, "common", lr=1e-2, classes_per_video=4, steps=3, seed=0)
        assert not torch.allclose(trained, features["label_embeds"])
        reports = bench.main(["--data", str(data), "--out", str(tmp_path / "out"), "--steps", "2"])
    assert len(reports) == 2 + len(bench.RUNS)
    frozen = reports["frozen class names"]
    assert frozen == bench.per_kind_aupr(features, features["label_embeds"], bench.json_kinds(data))
    assert all(0.0 < value <= 1.0 for report in reports.values() for value in report.values())
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(reports)  # the header, then one row each
