"""A model that serves a fixed vocabulary: the video encoder, the score head and the label bank, no label encoder.

Label embeddings depend only on the label, so a trained model's vocabulary can be encoded once (the label bank) and
the LLM and CLIP text tower left behind: the saved folder then holds the vision tower, the temporal branch and the
bank, and scoring costs a video embedding and one matrix product whatever LLM made the labels. New labels need the
full model.
"""

from __future__ import annotations

import copy

import torch

from .configuration_ovmlv import OvmlvConfig
from .modeling_ovmlv import OvmlvModel, quiet_transformers_logs

NO_LABEL_ENCODER = (
    "This model serves the fixed vocabulary of its label bank (it was exported without its label encoder, to be "
    "small): it cannot embed other labels. Use labels from model.label_bank.labels, or the full model for new ones."
)


class OvmlvFixedVocabularyModel(OvmlvModel):
    """`OvmlvModel` without `label_encoder`: videos are scored against `label_bank` embeddings only
    (`model.logits(video_embeds, model.label_bank.embeddings_for(labels))`, or the pipeline with bank labels)."""

    def build_label_encoder(self, config: OvmlvConfig) -> None:
        return None

    def get_label_features(self, *args, **kwargs) -> torch.Tensor:
        raise ValueError(NO_LABEL_ENCODER)

    @classmethod
    def from_model(cls, model: OvmlvModel) -> OvmlvFixedVocabularyModel:
        """`model`'s video encoder, score head (weights shared, not copied) and label bank; the bank is required."""
        if model.label_bank is None or len(model.label_bank) == 0:
            raise ValueError(
                "A fixed-vocabulary model serves its label bank, and this model has none: build one with "
                "`ovmlv vocab build --model MODEL --labels-file vocab.txt` (or LabelBank.build) first."
            )
        config = copy.deepcopy(model.config)
        config.architectures = [cls.__name__]
        weights = {key: value for key, value in model.state_dict().items() if not key.startswith("label_encoder.")}
        with quiet_transformers_logs():
            fixed = cls.from_pretrained(None, config=config, state_dict=weights, dtype=model.dtype)
        fixed.label_bank = model.label_bank
        # The bank was made by `model`'s label encoder: its fingerprint goes into the config (see `bank_fingerprint`).
        fixed.config.bank_label_encoder_fingerprint = fixed.label_encoder_fingerprint = model.label_encoder_fingerprint
        return fixed.train(model.training)

    def bank_fingerprint(self, weights_files: list[str] | None) -> str | None:
        """The fingerprint of the label encoder that made the bank, kept in the config at export. The folder has no
        label-encoder weights to hash: hashing none would give every fixed-vocabulary folder the same fingerprint
        and let another export's bank pass as this one's. Two exports of one model share it, as their banks may."""
        return getattr(self.config, "bank_label_encoder_fingerprint", None)
