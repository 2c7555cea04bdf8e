"""How the tests compare numbers, so that they pass on any machine.

Weights and states are compared bit-exactly: loading, saving and copying must not change a single bit. Float outputs
of two model instances are compared within a tight tolerance: a loaded model's tensors sit at other addresses and
alignments, so the math kernels may take other paths (another machine, another thread count) and round differently
(seen: 4.5e-8 after a save/load round trip). The same holds for the weights of two training runs, whose every step
is such an output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import torch

OUTPUT_RTOL, OUTPUT_ATOL = 1e-5, 1e-6
# Ranking metrics (AUPR, peak-F1 thresholds) of two instances' scores: each jumps when two nearly tied scores swap
# under that rounding (seen on another machine: 2.9e-5 relative on a per-kind AUPR of a resumed run, its weights
# within OUTPUT_RTOL of the uninterrupted run's).
REPORT_RTOL, REPORT_ATOL = 1e-4, 1e-5


def assert_same_outputs(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Float outputs of two model instances: equal up to rounding."""
    torch.testing.assert_close(actual, expected, rtol=OUTPUT_RTOL, atol=OUTPUT_ATOL)


def assert_same_state(actual: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> None:
    """Weights or buffers: the same names and bit-identical values."""
    assert actual.keys() == expected.keys()
    different = [name for name in expected if not torch.equal(actual[name], expected[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def assert_trained_alike(actual: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> None:
    """Weights of two training runs of the same steps: equal up to the rounding of their float steps."""
    assert actual.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=OUTPUT_RTOL, atol=OUTPUT_ATOL, msg=name)


def assert_same_report(actual: Any, expected: Any) -> None:
    """Metrics computed from two model instances' scores (nested dicts and lists): floats up to rounding and the
    near-ties it swaps (`REPORT_RTOL`), the rest exactly."""
    if isinstance(expected, Mapping):
        assert isinstance(actual, Mapping) and actual.keys() == expected.keys()
        for key in expected:
            assert_same_report(actual[key], expected[key])
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected)
        for actual_item, expected_item in zip(actual, expected, strict=True):
            assert_same_report(actual_item, expected_item)
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=REPORT_RTOL, abs=REPORT_ATOL, nan_ok=True)
    else:
        assert actual == expected
