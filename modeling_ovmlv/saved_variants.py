"""The two lighter kinds of saved model, and how a folder says which kind it is.

- Adapter-style: `model.safetensors` holds only the trained weights; `tower_checkpoints.json` names the frozen
  towers by Hub id and commit, and loading fetches them from there (as `from_towers` does) and puts the trained
  weights on top. For CLIP B/32 + Flan-T5-XL that is 193 MB shipped instead of 12.7 GB (bench/export_sizes.py).
- Fixed-vocabulary: no label encoder at all (no LLM, no CLIP text tower); labels come from the label bank only
  (`fixed_vocabulary.py`), so serving costs the same whatever LLM trained the labels. Its config names
  `OvmlvFixedVocabularyModel` in `architectures` and `auto_map`, which pick its class when loaded
  (`saved_architecture`, `OvmlvModel.saved_subclass`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from transformers.utils import CONFIG_NAME, cached_file

from .atomic_files import write_text_atomically

TOWER_CHECKPOINTS_NAME = "tower_checkpoints.json"


@dataclass(frozen=True)
class TowerCheckpoint:
    """A tower on the Hub: its repo id and the commit (revision) whose weights the trained layers were fitted to."""

    id: str
    revision: str

    def __str__(self) -> str:
        return f"{self.id}@{self.revision}"


@dataclass(frozen=True)
class TowerCheckpoints:
    """The towers an adapter-style folder is loaded onto: CLIP, and the T5 when the label encoder has one."""

    clip: TowerCheckpoint
    llm: TowerCheckpoint | None = None

    def __str__(self) -> str:
        return f"CLIP {self.clip}" + (f" and T5 {self.llm}" if self.llm else "")

    def save(self, folder: str | os.PathLike) -> None:
        write_text_atomically(Path(folder) / TOWER_CHECKPOINTS_NAME, json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def find(cls, name_or_path: str | os.PathLike, **hub_kwargs) -> TowerCheckpoints | None:
        """The towers a saved folder (local or on the Hub) is loaded onto; None for a self-contained folder."""
        found = cached_file(
            name_or_path, TOWER_CHECKPOINTS_NAME, _raise_exceptions_for_missing_entries=False, **hub_kwargs
        )
        if found is None:
            return None
        data = json.loads(Path(found).read_text(encoding="utf-8"))
        return cls(TowerCheckpoint(**data["clip"]), TowerCheckpoint(**data["llm"]) if data.get("llm") else None)


def saved_architecture(name_or_path: str | os.PathLike, **hub_kwargs) -> str | None:
    """The model class a saved folder's config names (`architectures`), or None."""
    found = cached_file(name_or_path, CONFIG_NAME, _raise_exceptions_for_missing_entries=False, **hub_kwargs)
    if found is None:
        return None
    architectures = json.loads(Path(found).read_text(encoding="utf-8")).get("architectures") or [None]
    return architectures[0]
