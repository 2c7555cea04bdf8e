"""The settings of the synthetic-labels pipeline (`SyntheticLabelsConfig`) and the defaults its stages share, in a
module that loads no model library: `ovmlv synth-labels --help` lists them without waiting for torch."""

from __future__ import annotations

from dataclasses import dataclass

from .concepts import MAX_CONCEPT_WORDS, PROMPTS

DEFAULT_CAPTION_PROMPT = "Describe this image in one sentence."
DEFAULT_LABEL_TEMPLATE = "a video of {label}"
KMEANS_BACKENDS = ("auto", "sklearn", "faiss")
CONFIG_FILE = "synthetic_labels_config.json"  # the settings of the run that made the folder


@dataclass
class SyntheticLabelsConfig:
    """Every setting of the pipeline; the CLI flags are these names with dashes."""

    manifest: str  # JSONL, one {"video": path relative to the manifest's folder, "labels": [...], ...} per line
    out: str
    captioner: str  # image-text-to-text model id or folder (paper: IDEFICS-9b-Instruct, LLaVA)
    llm: str  # seq2seq or causal LM id or folder (paper: LLaMA-2-13B-chat)
    clip: str = "openai/clip-vit-base-patch32"  # text encoder for stages 3 and 4 (paper: OpenAI CLIP B/32)
    # 1. captions
    num_frames: int = 8  # captions per video (the paper's prompt examples list 8)
    caption_prompt: str = DEFAULT_CAPTION_PROMPT
    caption_max_new_tokens: int = 48
    caption_batch_size: int = 16  # frames per captioner batch
    # 2. concepts
    kinds: tuple[str, ...] = ("verbs", "objects")
    llm_max_new_tokens: int = 96
    llm_batch_size: int = 4  # videos (prompts) per LLM batch
    chat_template: bool = True  # wrap the prompt in the LLM's chat template when it has one
    max_concept_words: int = MAX_CONCEPT_WORDS
    # 3. vocabulary
    num_clusters: int | None = None  # per kind; None: cluster_ratio x distinct concepts
    cluster_ratio: float = 0.5
    min_merge_similarity: float | None = None
    kmeans_backend: str = "auto"
    report_rows: int = 20
    # 4. assignment
    label_template: str = DEFAULT_LABEL_TEMPLATE
    threshold: float | None = 0.8
    top_k: int | None = 5
    seed: int = 0
    device: str | None = None  # default: cuda when available
    dtype: str = "auto"  # weights of the captioner and the LLM, as saved

    def __post_init__(self) -> None:
        """Fail before hours of captioning, not at the stage that would trip over a bad setting."""
        self.kinds = tuple(self.kinds)
        if unknown := set(self.kinds) - set(PROMPTS):
            raise ValueError(f"unknown concept kinds {sorted(unknown)}; known: {list(PROMPTS)}")
        if self.kmeans_backend not in KMEANS_BACKENDS:
            raise ValueError(f"unknown k-means backend {self.kmeans_backend!r}; choose from {KMEANS_BACKENDS}")
        if "{label}" not in self.label_template:
            raise ValueError(f"label_template needs a {{label}} field, got {self.label_template!r}")
        if self.threshold is None and self.top_k is None:
            raise ValueError("give a threshold, a top_k or both: otherwise every label goes to every video")
