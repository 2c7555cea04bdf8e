"""Search: the score head read as a query vector and a bias, exact and FAISS search agreeing when FAISS scans every
list, and `ovmlv search` ranking videos as the model scores them, with its FAISS index built once and kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ovmlv import arguments, cli
from ovmlv.modeling_ovmlv import OvmlvModel
from ovmlv.modeling_ovmlv.label_bank import embed_labels
from ovmlv.video_library.index_store import VideoIndex
from ovmlv.video_library.search import (
    SEARCH_DIR,
    SearchConfig,
    VideoSearch,
    best_videos,
    build_faiss_index,
    linear_readout,
)
from tests.hub_model_folder import VOCABULARY, save_trained_folder
from tests.numerics import assert_same_outputs
from tests.video_files import write_video
from tests.video_library_files import FRAMES, build_index, shade, write_library

QUERY = "a red circle"


@pytest.mark.parametrize("label_encoder", ["class_name", "dualcoop"])
def test_the_score_head_is_a_query_vector_and_a_bias(towers, processor, label_encoder):
    model = OvmlvModel.from_towers(clip=towers.clip, label_encoder=label_encoder, temporal_layers=0, score_bias=-1.5)
    label_embeds = embed_labels(["dog", "beach"], model, processor)  # DualCoOp: (2, 2D) pairs
    videos = torch.nn.functional.normalize(torch.randn(5, model.config.projection_dim), dim=-1)
    query, bias = linear_readout(model.logits, label_embeds, model.config.projection_dim)
    assert query.shape == (2, model.config.projection_dim)
    with torch.no_grad():
        assert_same_outputs(videos @ query.T + bias, model.logits(videos, label_embeds))
    assert torch.allclose(bias, torch.tensor(-1.5))


def direction_head_model(towers) -> OvmlvModel:
    """A model whose score head adds a direction term of 4 codes (not affine in the video embedding)."""
    return OvmlvModel.from_towers(
        clip=towers.clip,
        label_encoder="class_name",
        temporal_layers=1,
        direction_dims=4,
        time_reversal_phrases=[["moving left", "moving right"]],
    ).eval()


def test_a_head_not_affine_in_the_video_ranks_videos_as_it_scores_them(towers):
    """The direction head adds log(2 sigmoid(a)) of the code agreement: no query vector reads it, so the found videos
    are scored again by the head, exactly and through FAISS."""
    model = direction_head_model(towers)
    generator = torch.Generator().manual_seed(0)
    dim = model.config.projection_dim
    videos = torch.cat(
        [
            torch.nn.functional.normalize(torch.randn(300, dim, generator=generator), dim=-1),
            3 * torch.randn(300, 4, generator=generator),
        ],
        dim=1,
    )
    labels = torch.cat(
        [
            torch.nn.functional.normalize(torch.randn(3, dim, generator=generator), dim=-1),
            torch.randn(3, 4, generator=generator),
        ],
        dim=1,
    )
    with torch.no_grad():
        expected = model.logits(videos, labels).T.topk(5, dim=1)
    exact_logits, exact_rows = best_videos(VideoSearch(videos, "exact"), model.logits, labels, 5)
    assert torch.equal(exact_rows, expected.indices)
    torch.testing.assert_close(exact_logits, expected.values)
    config = SearchConfig(probe=10_000, training_points_per_list=39)
    exhaustive = VideoSearch(videos, "faiss", config, content_dims=dim)
    faiss_logits, faiss_rows = best_videos(exhaustive, model.logits, labels, 5)
    assert torch.equal(faiss_rows, expected.indices)  # the 20 best inner products hold the 5 best scores here
    torch.testing.assert_close(faiss_logits, expected.values)
    query, bias = linear_readout(model.logits, labels, videos.shape[1])
    assert not torch.equal((videos @ query.T + bias).T.topk(5, dim=1).indices, expected.indices)  # not affine


def test_faiss_lists_group_videos_by_content_when_direction_codes_are_large(towers):
    """Direction codes about 8 times the content's norm (as trained on the organism): lists built over the content
    hold each topic, so one probed list finds a topic's best videos; drawn over the whole embedding, they would not."""
    model = direction_head_model(towers)
    generator = torch.Generator().manual_seed(0)
    dim = model.config.projection_dim
    topics = torch.eye(2, dim)
    content = topics.repeat_interleave(100, dim=0) + 0.3 * torch.randn(200, dim, generator=generator)
    codes = 4 * torch.randn(200, 4, generator=generator)
    videos = torch.cat([torch.nn.functional.normalize(content, dim=-1), codes], dim=1)
    labels = torch.cat([topics, torch.zeros(2, 4)], dim=1)  # labels without a direction phrase: codes 0
    with torch.no_grad():
        expected = model.logits(videos, labels).T.topk(5, dim=1).indices
    one_list_each = SearchConfig(lists_per_sqrt=0.15, probe=1, training_points_per_list=39)  # 2 lists, 1 probed
    search = VideoSearch(videos, "faiss", one_list_each, content_dims=dim)
    _, rows = best_videos(search, model.logits, labels, 5)
    assert search.faiss_index.nlist == 2
    assert torch.equal(rows, expected)


def test_faiss_scanning_every_list_finds_what_exact_search_finds():
    embeddings = torch.nn.functional.normalize(
        torch.randn(3000, 32, generator=torch.Generator().manual_seed(0)), dim=-1
    )
    queries = torch.nn.functional.normalize(torch.randn(4, 32), dim=-1)
    config = SearchConfig(probe=10_000)  # more than the lists: an exhaustive scan
    exact_scores, exact_rows = VideoSearch(embeddings, "exact").search(queries, 10)
    faiss = VideoSearch(embeddings, "faiss", config)
    faiss.use_faiss_index(build_faiss_index(embeddings, config))
    assert config.num_lists(3000) == 46  # sqrt(3000) lists, but at most 3000 // 64 training points each
    faiss_scores, faiss_rows = faiss.search(queries, 10)
    assert torch.equal(faiss_rows, exact_rows)
    torch.testing.assert_close(faiss_scores, exact_scores)
    assert VideoSearch(embeddings, "auto", SearchConfig(exact_max_videos=2999)).backend == "faiss"
    assert VideoSearch(embeddings, "auto").backend == "exact"


@pytest.fixture(scope="module")
def model_folder(towers, processor, tmp_path_factory) -> Path:
    return save_trained_folder(tmp_path_factory.mktemp("model"), towers, processor, VOCABULARY)


def search(index: Path, *options: str, capsys) -> list[dict]:
    assert cli.main(["search", str(index), QUERY, "--top-k", "5", "--json", *options]) == arguments.EXIT_OK
    return json.loads(capsys.readouterr().out)


def test_search_ranks_videos_as_the_model_scores_them(model_folder, processor, tmp_path, capsys):
    index = build_index(write_library(tmp_path / "videos"), model_folder, tmp_path / "library.index")
    capsys.readouterr()  # the index's report
    model = OvmlvModel.from_pretrained(model_folder).eval()
    videos, embeddings = VideoIndex.open(index).embedded()
    with torch.no_grad():
        scores = model.logits(embeddings, embed_labels([QUERY], model, processor)).sigmoid()[:, 0]
    best = scores.argsort(descending=True)[:5].tolist()

    [exact] = search(index, "--backend", "exact", capsys=capsys)
    assert exact["query"] == QUERY and [item["video"] for item in exact["videos"]] == [videos[i] for i in best]
    assert [item["score"] for item in exact["videos"]] == pytest.approx(scores[best].tolist(), abs=1e-6)
    assert not (index / SEARCH_DIR).exists()  # exact search needs no FAISS index

    [through_faiss] = search(index, "--backend", "faiss", capsys=capsys)  # every list scanned at this size
    assert [item["video"] for item in through_faiss["videos"]] == [item["video"] for item in exact["videos"]]
    [kept] = list((index / SEARCH_DIR).glob("ivf-*.faiss"))
    [again] = search(index, "--exact-max-videos", "0", capsys=capsys)  # auto: FAISS above 0 videos
    assert again == through_faiss and list((index / SEARCH_DIR).glob("ivf-*.faiss")) == [kept]  # reused
    kept.write_bytes(b"damaged")  # derived data: rebuilt, not an error
    assert search(index, "--backend", "faiss", capsys=capsys) == [through_faiss] and kept.stat().st_size > 7

    write_video(tmp_path / "videos" / "new.mp4", num_frames=2 * FRAMES, fps=6, frame_fn=lambda f: shade(77))
    build_index(
        tmp_path / "videos", model_folder, index, arguments.EXIT_OK
    )  # the index grows: the FAISS index is rebuilt
    capsys.readouterr()
    [grown] = search(index, "--backend", "faiss", "--top-k", "50", capsys=capsys)
    assert len(grown["videos"]) == len(videos) + 1
    assert list((index / SEARCH_DIR).glob("ivf-*.faiss")) != [kept] and not kept.exists()
