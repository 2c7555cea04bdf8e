"""Every Hub call ends: against an endpoint that accepts connections and never answers, loading a model by Hub id
and pushing fail within seconds, in one line that says how to run offline; any other request times out."""

from __future__ import annotations

import time

import httpx2
import huggingface_hub
import pytest
from huggingface_hub import constants
from huggingface_hub.utils._http import default_client_factory

from ovmlv.arguments import EXIT_ERROR
from ovmlv.cli import main
from ovmlv.hub_access import HUB_TIMEOUT_ENV, bound_hub_requests
from tests.http_servers import http_server, never_answering
from tests.hub_model_folder import save_trained_folder


@pytest.fixture
def silent_hub(monkeypatch):
    """The Hub's address pointed at a server that never answers; huggingface_hub's client restored afterwards."""
    with http_server(never_answering) as url:
        monkeypatch.setattr(constants, "ENDPOINT", url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        yield url
    huggingface_hub.set_client_factory(default_client_factory)


def test_a_hub_model_with_no_answer_fails_in_seconds_saying_how_to_run_offline(silent_hub, capsys, video_path):
    start = time.perf_counter()
    assert main(["classify", str(video_path), "--model", "org/name", "--labels", "dog"]) == EXIT_ERROR
    assert time.perf_counter() - start <= 10
    err = capsys.readouterr().err
    assert err.startswith(f"ovmlv classify: error: Cannot reach the Hub ({silent_hub}) to load org/name: ReadTimeout")
    assert "HF_HUB_OFFLINE=1" in err and "local model folder" in err and err.count("\n") == 1


def test_push_with_no_answer_fails_in_seconds(silent_hub, capsys, towers, processor, tmp_path):
    folder = save_trained_folder(tmp_path / "export", towers, processor)
    start = time.perf_counter()
    assert main(["push", str(folder), "--repo", "org/name"]) == EXIT_ERROR
    assert time.perf_counter() - start <= 10
    assert f"Cannot reach the Hub ({silent_hub}) to push to org/name" in capsys.readouterr().err


def test_every_request_of_the_hub_client_times_out(silent_hub, monkeypatch):
    """huggingface_hub's own client has no timeout: an API call (creating a repo, a commit) would wait forever."""
    monkeypatch.setenv(HUB_TIMEOUT_ENV, "1")
    bound_hub_requests()
    start = time.perf_counter()
    with pytest.raises(httpx2.TimeoutException):
        huggingface_hub.HfApi(endpoint=silent_hub, token="hf_test").create_repo("org/name", exist_ok=True)
    assert time.perf_counter() - start < 5
