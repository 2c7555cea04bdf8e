"""bench/llm_answer_worth.py on a small world: every table has a row per label side and a column per group, and
the gate's zero row is the class names' row (the zero-shot start)."""

from pathlib import Path

from ovmlv.organism.world import SMALL_WORLD, SyntheticConfig, generate_dataset
from tests.bench_scripts import load_bench
from tests.process_state import torch_threads


def test_the_answer_table_and_the_aligned_gates_are_reported(tmp_path: Path, capsys) -> None:
    bench = load_bench("llm_answer_worth")
    data = tmp_path / "data"
    generate_dataset(data, SyntheticConfig(num_train=8, num_val=6, num_heldout=6, **SMALL_WORLD), progress=False)
    with torch_threads():
        rows = bench.main(["--data", str(data), "--out", str(tmp_path / "out"), "--align", "2"])
    groups = set(bench.label_groups(data))
    sides = {"class name", "first answer item", "class name + first item", "first two items"}
    assert set(rows) == sides | {"best of class name and category members"} | {f"g = {gate:g}" for gate in bench.GATES}
    measured = {group for values in rows.values() for group in values}
    assert measured == groups and all(0.0 < v <= 1.0 for values in rows.values() for v in values.values())
    assert rows["g = 0"] == rows["class name"]  # a closed gate is the zero-shot start
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(printed) == 2 + len(rows)  # two headers, then one row each
