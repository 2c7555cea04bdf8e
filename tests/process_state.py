"""Process-wide state that in-process tests change and must put back: torch's thread count, Accelerate's state."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from accelerate.state import AcceleratorState, GradientState


@contextmanager
def torch_threads(count: int | None = None) -> Iterator[None]:
    """Run with `count` torch threads (None: as they are; code inside may change them), then restore the count."""
    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def reset_accelerate_state() -> None:
    """Forget the process-wide state an `Accelerator` leaves behind, so the next one starts afresh."""
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
