"""What `ovmlv export --variant` writes: the full folder, an adapter-style folder or a fixed-vocabulary folder.

- `full`: every weight, towers included (self-contained; 1983 MB for CLIP B/32 + T5-base, bench/export_sizes.py).
- `adapter`: only the weights that differ from the tower checkpoints (the trained layers), and
  `tower_checkpoints.json` naming the towers by Hub id and commit; `from_pretrained` fetches the towers from the Hub
  and puts the trained weights on top, so the model is bit-for-bit the exported one.
- `fixed-vocabulary`: no label encoder (no LLM, no CLIP text tower, no T5 tokenizer); the label bank is the
  vocabulary (`modeling_ovmlv/fixed_vocabulary.py`).
How each loads is in `modeling_ovmlv/saved_variants.py`; both light variants load with `trust_remote_code=True`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model code loads torch and transformers: imported when a variant is written
    import torch

    from ovmlv.modeling_ovmlv.saved_variants import TowerCheckpoints

VARIANTS = ("full", "adapter", "fixed-vocabulary")
COMMIT = re.compile(r"[0-9a-f]{40}")


class VariantError(ValueError):
    """An export variant that cannot be made from this model as asked; the message says what to pass."""


@dataclass(frozen=True)
class VariantOptions:
    """`variant`, and for `adapter` the towers' Hub ids (default: the config's) and revisions (default: main)."""

    variant: str = "full"
    clip: str | None = None
    clip_revision: str | None = None
    llm: str | None = None
    llm_revision: str | None = None


def save_variant(model, processor, out_dir: Path, options: VariantOptions) -> TowerCheckpoints | None:
    """Write `model` and `processor` into `out_dir` as `options.variant`; returns the towers an adapter names."""
    if options.variant not in VARIANTS:
        raise VariantError(f"variant={options.variant!r} is not one of {VARIANTS}.")
    if options.variant == "adapter":
        towers = tower_checkpoints(model, options)
        save_adapter(model, processor, out_dir, towers)
        return towers
    if options.variant == "fixed-vocabulary":
        save_fixed_vocabulary(model, processor, out_dir)
    else:
        model.save_pretrained(out_dir)
        processor.save_pretrained(out_dir)
    return None


def tower_checkpoints(model, options: VariantOptions) -> TowerCheckpoints:
    """The towers' Hub ids (given, else the config's) pinned to the commits their revisions point at now."""
    from ovmlv.modeling_ovmlv.saved_variants import TowerCheckpoint, TowerCheckpoints

    clip = options.clip or model.config.deployment_config.clip_name_or_path
    llm = options.llm or model.config.deployment_config.llm_name_or_path
    if clip is None or (model.config.uses_llm and llm is None):
        missing = "--clip" if clip is None else "--llm"
        raise VariantError(
            f"An adapter export names its towers on the Hub, and this model's config does not say where its "
            f"{'CLIP' if clip is None else 'T5'} came from (it was built from a local folder): pass {missing} "
            "HUB_ID (and its revision) of the checkpoint it was built on."
        )
    pinned_llm = None
    if model.config.uses_llm:
        pinned_llm = TowerCheckpoint(llm, resolve_revision(llm, options.llm_revision))
    return TowerCheckpoints(TowerCheckpoint(clip, resolve_revision(clip, options.clip_revision)), pinned_llm)


def resolve_revision(repo_id: str, revision: str | None) -> str:
    """The commit `revision` (branch, tag or commit; default main) of the Hub model `repo_id` points at: asked of
    the Hub, or read from the local cache when offline."""
    if revision is not None and COMMIT.fullmatch(revision):
        return revision
    from huggingface_hub import HfApi, constants, try_to_load_from_cache

    if not constants.HF_HUB_OFFLINE:
        return HfApi().model_info(repo_id, revision=revision).sha
    cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if not isinstance(cached, str):
        raise VariantError(
            f"Offline, and {repo_id} at {revision or 'main'} is not in the Hub cache: pass its commit "
            "(--clip-revision / --llm-revision), or export with the network."
        )
    return Path(cached).parent.name  # .../snapshots/<commit>/config.json


def adapter_weights(model, towers: TowerCheckpoints) -> dict[str, torch.Tensor]:
    """The weights loading the adapter must add to `towers`: every tensor that is not a tower's, or differs from
    it (trained copies of CLIP layers, unfrozen towers). A frozen tower weight that differs means the towers named
    are not the ones the model was built on: an error."""
    import torch

    from ovmlv.modeling_ovmlv.modeling_ovmlv import load_towers

    llm_id, llm_revision = (towers.llm.id, towers.llm.revision) if towers.llm else (None, None)
    clip, llm = load_towers(towers.clip.id, llm_id, towers.clip.revision, llm_revision)
    from_towers = model.tower_weights(clip, llm, str(towers))
    frozen = {name for name, parameter in model.named_parameters() if not parameter.requires_grad}
    state = model.state_dict()
    differing = [key for key in from_towers if not torch.equal(state[key], from_towers[key])]
    if wrong := [key for key in differing if key in frozen]:
        raise VariantError(
            f"The towers {towers} are not the checkpoints this model was built on: {len(wrong)} frozen tensors "
            f"differ, e.g. {wrong[:3]}. Name the right ones with --clip/--llm and their revisions."
        )
    return {key: value for key, value in state.items() if key not in from_towers or key in differing}


def save_adapter(model, processor, out_dir: Path, towers: TowerCheckpoints) -> None:
    model.save_pretrained(out_dir, state_dict=adapter_weights(model, towers))
    towers.save(out_dir)
    processor.save_pretrained(out_dir)


def save_fixed_vocabulary(model, processor, out_dir: Path) -> None:
    from ovmlv.modeling_ovmlv.fixed_vocabulary import OvmlvFixedVocabularyModel

    OvmlvFixedVocabularyModel.from_model(model).save_pretrained(out_dir)
    without_llm = copy.copy(processor)  # the CLIP tokenizer stays: it tells a bank label from a new one
    without_llm.llm_tokenizer = None
    without_llm.save_pretrained(out_dir)
