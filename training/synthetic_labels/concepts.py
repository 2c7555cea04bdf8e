"""Stage 2 (paper supp. I): an LLM reads a video's captions and lists the concepts in it.

The prompt is the paper's (Listing in supp. I, used with LLaMA-2-13B-chat): an instruction, three solved examples
(the captions of a video, then "Verbs Found:" and a numbered list) and the video to solve. `PROMPTS["verbs"]`
reproduces it word for word; `PROMPTS["objects"]` asks the same three videos for objects ("Objects Found:"),
since the paper extracts object labels too but prints only the action prompt.

LLM output is messy: chatty preambles, repetition loops, explanations after the label, the model carrying on with
a fifth made-up example. `parse_concepts` keeps only the first numbered list and normalises its items; the raw
output is what the cache stores, so an improved parser needs no LLM rerun.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .jsonl_cache import JsonlCache

GenerateFn = Callable[[list[str]], list[str]]  # prompts -> the text generated after each (prompt not included)

MAX_CONCEPT_WORDS = 6  # longer "items" are sentences the LLM wrote instead of labels


@dataclass(frozen=True)
class ConceptPrompt:
    """A few-shot prompt: each solved example is (captions, concepts); `format` appends the video to solve."""

    instruction: str
    answer_header: str
    examples: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]

    def format(self, captions: Sequence[str]) -> str:
        blocks = [self._block(number, *example) for number, example in enumerate(self.examples, start=1)]
        return "\n\n".join([*blocks, self._block(len(self.examples) + 1, captions, ())])

    def _block(self, number: int, captions: Sequence[str], concepts: Sequence[str]) -> str:
        parts = [self.instruction, f"Video {number} description:", _numbered(captions), self.answer_header]
        return "\n\n".join(parts + ([_numbered(concepts)] if concepts else []))

    @property
    def fingerprint(self) -> str:
        """Identifies the prompt text in cache headers: results of an edited prompt are not reused."""
        return hashlib.sha1(self.format(["{captions}"]).encode()).hexdigest()[:12]


def _numbered(items: Sequence[str]) -> str:
    return "\n".join(f"{number}. {item}" for number, item in enumerate(items, start=1))


# The three in-context videos of the paper's listing, captions verbatim.
_EXAMPLE_CAPTIONS = (
    (
        "A group of people riding motorcycles at night.",
        "A motorcycle is lit up with blue lights.",
        "A person is riding a bike at night.",
        "A motorcycle parked on the street at night.",
        "A group of people are gathered in a dimly lit room.",
        "A motorcycle parked in a dark room.",
        "A motorcycle is parked in a dark room.",
        "A person is riding a bike at night.",
    ),
    (
        "A man is performing on stage with a band.",
        "A group of men are performing on a stage.",
        "A man with a microphone is performing on stage.",
        "A group of young men performing on stage.",
        "A man is singing on a stage with a band.",
        "A man is playing a guitar on a stage.",
        "A man and a woman are performing on stage.",
        "A dark room with a bright light shining on it.",
    ),
    (
        "A person is putting lotion on another person's hand.",
        "A person is putting nail polish on another person's nails.",
        "A person is putting nail polish on their nails.",
        "A person is holding a ball point pen.",
        "A person is writing on a piece of paper.",
        "A person is holding another person's hand.",
        "A person is putting a ring on another person's finger.",
        "A black screen with a white frame.",
    ),
)
_VERBS = (
    ("riding motorcycle", "riding bike"),
    ("performing on stage", "singing on stage", "playing guitar"),
    ("putting lotion", "putting nail polish", "writing", "putting ring"),
)
_OBJECTS = (
    ("motorcycle", "bike", "blue lights", "street"),
    ("stage", "band", "microphone", "guitar"),
    ("lotion", "nail polish", "ball point pen", "paper", "ring"),
)
_INSTRUCTION = (
    "Following is the description of a video. Output a numbered list of {what} in the video. "
    "Do not add any explanation."
)
PROMPTS: dict[str, ConceptPrompt] = {
    "verbs": ConceptPrompt(
        _INSTRUCTION.format(what="verbs representing visual actions performed"),
        "Verbs Found:",
        tuple(zip(_EXAMPLE_CAPTIONS, _VERBS, strict=True)),
    ),
    "objects": ConceptPrompt(
        _INSTRUCTION.format(what="nouns representing visual objects seen"),
        "Objects Found:",
        tuple(zip(_EXAMPLE_CAPTIONS, _OBJECTS, strict=True)),
    ),
}

_ITEM = re.compile(r"^(?:(\d+)\s*[.)]\s*|[-*•]\s+)(.*)$")  # "3. x", "3) x", "- x", "* x", "• x"
_INLINE_ITEM = re.compile(r"\s+(?=\d+[.)]\s)")  # "1. x 2. y" on one line, as small seq2seq models write it
_SECTION = re.compile(r"^(following is|video \d+ description|\w+ found\s*:)", re.IGNORECASE)  # the prompt, echoed
_EXPLANATION = re.compile(r"\s+[-–—]\s.*$|\s*\(.*$|\s*:\s.*$")  # "x - because ...", "x (the man ...)", "x: ..."
_NOTHING = re.compile(r"^(none|n/?a|nothing|no \w+( \w+)? found)$")


def normalise_concept(text: str) -> str:
    """The form concepts are counted and clustered in: lower case, single spaces, no quotes, markdown or end
    punctuation."""
    text = " ".join(text.lower().split())
    return text.strip(" \"'`*_.,;:!?")


def parse_concepts(text: str, max_words: int = MAX_CONCEPT_WORDS) -> list[str]:
    """The items of the first numbered (or bulleted) list in an LLM answer, normalised, repeats dropped.

    Lines around the list (a preamble, "I hope this helps!") are ignored; the list ends where the numbering
    starts again at or below the last number, or where the model starts to echo the prompt (another "Video 5
    description:" block). An item keeps its bold part if it has one ("**Surfing**: riding waves"), otherwise it
    loses a trailing explanation (" - ...", " (...)", ": ..."). Items that say "none" or run longer than
    `max_words` words are dropped.
    """
    concepts: list[str] = []
    last_number = 0
    for line in _INLINE_ITEM.sub("\n", text).splitlines():
        line = line.strip()
        if _SECTION.match(line):
            if concepts:
                break
            continue
        item = _ITEM.match(line)
        if item is None:
            continue
        if item.group(1) is not None:
            number = int(item.group(1))
            if number <= last_number:
                break
            last_number = number
        content = item.group(2)
        bold = re.search(r"\*\*(.+?)\*\*", content)
        concept = normalise_concept(bold.group(1) if bold else _EXPLANATION.sub("", content))
        if concept and not _NOTHING.match(concept) and len(concept.split()) <= max_words:
            concepts.append(concept)
    return list(dict.fromkeys(concepts))


class TextGenerator:
    """A `GenerateFn` for any seq2seq (T5, Flan-T5) or causal (LLaMA, Mistral, Qwen) LM, decoding greedily.

    transformers 5 has no `text2text-generation` pipeline and `text-generation` takes causal LMs only, so this
    calls `generate` itself: one path for both kinds, returning only the new text. Instruction-tuned causal models
    get the prompt as a user turn of their chat template (`chat_template=True`, when the tokenizer has one).
    """

    def __init__(
        self,
        model: str,
        max_new_tokens: int = 96,
        chat_template: bool = True,
        device: str | None = None,
        dtype: str = "auto",
    ) -> None:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        self.seq2seq = AutoConfig.from_pretrained(model).is_encoder_decoder
        model_class = AutoModelForSeq2SeqLM if self.seq2seq else AutoModelForCausalLM
        self.model = model_class.from_pretrained(model, dtype=dtype).to(device or "cpu").eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        if not self.seq2seq:
            self.tokenizer.padding_side = "left"  # every prompt must end where generation starts
            if self.tokenizer.pad_token is None:
                self.tokenizer.pad_token = self.tokenizer.eos_token
        self.chat_template = chat_template and getattr(self.tokenizer, "chat_template", None) is not None
        self.max_new_tokens = max_new_tokens

    def __call__(self, prompts: list[str]) -> list[str]:
        import torch  # here, so that the prompts (and `ovmlv synth-labels --help`) load without it

        with torch.inference_mode():
            return self._generate(prompts)

    def _generate(self, prompts: list[str]) -> list[str]:
        if self.chat_template:
            prompts = [
                self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
                )
                for prompt in prompts
            ]
        inputs = self.tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=not self.chat_template
        ).to(self.model.device)
        generated = self.model.generate(
            **inputs,
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        if not self.seq2seq:
            generated = generated[:, inputs["input_ids"].shape[1] :]  # drop the prompt
        return self.tokenizer.batch_decode(generated, skip_special_tokens=True)


def extract_concepts(
    captions: Mapping[str, Sequence[str]],
    generate_fn: GenerateFn,
    prompt: ConceptPrompt,
    cache: JsonlCache,
    batch_size: int = 4,
    max_words: int = MAX_CONCEPT_WORDS,
    desc: str = "2/4 concepts",
    progress: bool = True,
) -> dict[str, list[str]]:
    """Concepts of every video (key -> captions); videos without captions get none without asking the LLM."""

    def ask(keys: list[str]) -> list[dict[str, Any]]:
        asked = [key for key in keys if captions[key]]
        answers = dict(
            zip(asked, generate_fn([prompt.format(captions[key]) for key in asked]) if asked else [], strict=True)
        )
        return [{"video": key, "raw": answers.get(key, "")} for key in keys]

    records = cache.fill(list(captions), ask, batch_size, desc, progress)
    return {key: parse_concepts(record["raw"], max_words) for key, record in records.items()}
