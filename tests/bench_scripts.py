"""The benchmark scripts in bench/ are scripts, not modules of the package: tests load one by its file."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load_bench(name: str) -> ModuleType:
    """bench/{name}.py as a module (its `main` not run)."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench
