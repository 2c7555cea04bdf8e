"""Stage 3 (paper supp. I): vocabulary expansion, i.e. de-duplicating the extracted concepts.

LLMs name one thing many ways ("riding a bike", "riding a bicycle", "bike riding"). As in the paper, every
distinct concept is embedded with the CLIP text encoder, k-means groups the embeddings, and each group is replaced
by its most frequent concept (frequency = number of videos it was extracted from; ties go to the alphabetically
first). Decisions the paper leaves open:

- Each kind (verbs, objects) is clustered on its own, so an action never renames an object or the reverse; the
  vocabulary is their union.
- k is `num_clusters` per kind, or `cluster_ratio` x the kind's distinct concepts (k-means needs a k; the paper
  does not give it). With `min_similarity`, a k-means cluster is further split greedily so that every member has
  at least that cosine similarity to its label: k-means proposes merges, the threshold vetoes far-fetched ones
  (Table 13 shows "ferris wheel" merged into "playground").
- scikit-learn's KMeans (seeded, so reproducible) by default; faiss when installed (much faster for the paper's
  scale of tens of thousands of concepts, but its results differ from scikit-learn's).
"""

from __future__ import annotations

import json
import math
import os
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ovmlv.modeling_ovmlv.atomic_files import write_text_atomically

from .embedding import EmbedFn
from .settings import KMEANS_BACKENDS

KMEANS_RESTARTS = 4  # k-means runs from different seeds; the best (lowest inertia) is kept


@dataclass
class Cluster:
    """Concepts merged into one vocabulary label, with how many videos each was extracted from."""

    label: str
    kind: str
    members: dict[str, int]  # most frequent first; the first is `label`

    @property
    def count(self) -> int:
        return sum(self.members.values())


@dataclass
class ClusteredVocabulary:
    """The expanded vocabulary as its clusters: which extracted concepts each label stands for (`labels` gives the
    label list; `training.batching.Vocabulary` is the label list training and evaluation index)."""

    clusters: list[Cluster]  # most frequent first

    @property
    def labels(self) -> list[str]:
        """The de-duplicated vocabulary, most frequent first (a label found as two kinds is listed once)."""
        return list(dict.fromkeys(cluster.label for cluster in self.clusters))

    def save(self, path: str | os.PathLike) -> None:
        write_text_atomically(Path(path), json.dumps([asdict(cluster) for cluster in self.clusters], indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> ClusteredVocabulary:
        return cls([Cluster(**cluster) for cluster in json.loads(Path(path).read_text())])


def kmeans(embeddings: np.ndarray, num_clusters: int, seed: int = 0, backend: str = "auto") -> np.ndarray:
    """Cluster index of each row of `embeddings` (unit norm, so Euclidean k-means groups by cosine similarity)."""
    if backend not in KMEANS_BACKENDS:
        raise ValueError(f"unknown k-means backend {backend!r}; choose from {KMEANS_BACKENDS}")
    if num_clusters >= len(embeddings):
        return np.arange(len(embeddings))
    if backend != "sklearn":
        try:
            import faiss
        except ImportError:
            if backend == "faiss":
                raise
        else:
            x = np.ascontiguousarray(embeddings, dtype=np.float32)
            model = faiss.Kmeans(x.shape[1], num_clusters, nredo=KMEANS_RESTARTS, seed=seed, spherical=True)
            model.train(x)
            return model.index.search(x, 1)[1][:, 0]
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=num_clusters, n_init=KMEANS_RESTARTS, random_state=seed).fit_predict(embeddings)


def cluster_concepts(
    counts: Mapping[str, int],
    embed_fn: EmbedFn,
    num_clusters: int,
    kind: str,
    min_similarity: float | None = None,
    seed: int = 0,
    backend: str = "auto",
) -> list[Cluster]:
    """Merge near-duplicate concepts (concept -> frequency) into `num_clusters` clusters (more with
    `min_similarity`)."""
    concepts = sorted(counts, key=lambda concept: (-counts[concept], concept))  # frequency order decides labels
    if not concepts:
        return []
    embeddings = embed_fn(concepts)  # (N, D)
    assignment = kmeans(embeddings, num_clusters, seed, backend)
    groups: dict[int, list[int]] = {}
    for index, cluster_id in enumerate(assignment.tolist()):
        groups.setdefault(cluster_id, []).append(index)  # each group stays in frequency order
    clusters = []
    for remaining in groups.values():
        while remaining:  # without min_similarity one pass takes the whole group
            head = embeddings[remaining[0]]
            similar = [i for i in remaining if min_similarity is None or embeddings[i] @ head >= min_similarity]
            clusters.append(Cluster(concepts[similar[0]], kind, {concepts[i]: counts[concepts[i]] for i in similar}))
            taken = set(similar)
            remaining = [i for i in remaining if i not in taken]
    return clusters


def build_vocabulary(
    concepts: Mapping[str, Mapping[str, Sequence[str]]],
    embed_fn: EmbedFn,
    num_clusters: int | None = None,
    cluster_ratio: float = 0.5,
    min_similarity: float | None = None,
    seed: int = 0,
    backend: str = "auto",
    progress: bool = True,
) -> ClusteredVocabulary:
    """The de-duplicated vocabulary from `concepts[kind][video]`, each kind clustered on its own."""
    clusters: list[Cluster] = []
    for kind, by_video in tqdm(concepts.items(), desc="3/4 vocabulary", unit="kind", disable=not progress):
        counts = Counter(concept for video_concepts in by_video.values() for concept in set(video_concepts))
        k = num_clusters or math.ceil(cluster_ratio * len(counts))
        clusters += cluster_concepts(counts, embed_fn, k, kind, min_similarity, seed, backend)
    return ClusteredVocabulary(sorted(clusters, key=lambda cluster: (-cluster.count, cluster.label)))


def clusters_markdown(vocabulary: ClusteredVocabulary, rows: int = 20, max_members: int = 12, seed: int = 0) -> str:
    """Clusters as in paper Table 13: the largest merges (where de-duplication decided most), then a random
    sample of merged clusters; each row is a label and its members, most frequent first, with video counts."""
    merged = [cluster for cluster in vocabulary.clusters if len(cluster.members) > 1]
    largest = sorted(merged, key=lambda cluster: (-len(cluster.members), -cluster.count, cluster.label))[:rows]
    sample = random.Random(seed).sample(merged, min(rows, len(merged)))
    lines = [
        f"{len(vocabulary.labels)} labels from {sum(len(c.members) for c in vocabulary.clusters)} distinct concepts; "
        f"{len(merged)} labels merge near-duplicates.",
    ]
    for title, clusters in (("Largest clusters", largest), ("Random sample of merged clusters", sample)):
        lines += ["", f"## {title}", "", "| Label | Kind | Videos | Concepts (videos) |", "|---|---|---|---|"]
        for cluster in clusters:
            shown = ", ".join(
                f"'{concept}' ({count})" for concept, count in list(cluster.members.items())[:max_members]
            )
            more = len(cluster.members) - max_members
            row = [cluster.label, cluster.kind, str(cluster.count), shown + (f", ... {more} more" if more > 0 else "")]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return "\n".join(lines) + "\n"
