"""Every Hub call ends, and an unreachable Hub is said in seconds, with how to run offline.

huggingface_hub's shared HTTP client has no timeout of its own: an API call (creating a repo, a commit, a push) to
an endpoint that accepts and never answers waits forever. Downloads do time out, but a failed one is retried with
back-off, a minute or more per file, for each of the dozen files a model has. So the `ovmlv` commands give the
client a timeout (`OVMLV_HUB_TIMEOUT_S`, per request: connecting, and each wait for the server), and ask the Hub
once, briefly, before loading a model from it.
"""

from __future__ import annotations

import os

HUB_TIMEOUT_ENV = "OVMLV_HUB_TIMEOUT_S"
DEFAULT_HUB_TIMEOUT_S = 30.0
PROBE_TIMEOUT_S = 4.0  # the first question to the Hub before a model loads from it
OFFLINE_HINT = (
    "To run offline, set HF_HUB_OFFLINE=1 (a model already in the Hub cache then loads from it), or pass a local "
    "model folder."
)


class HubUnreachableError(ConnectionError):
    """The Hub did not answer in time; the message says what was asked and how to run offline."""


def hub_timeout_s() -> float:
    text = os.environ.get(HUB_TIMEOUT_ENV, "")
    try:
        value = float(text) if text.strip() else DEFAULT_HUB_TIMEOUT_S
    except ValueError:
        raise ValueError(f"{HUB_TIMEOUT_ENV}={text!r} is not a number of seconds.") from None
    if not value > 0:
        raise ValueError(f"{HUB_TIMEOUT_ENV} must be positive, got {text!r}.")
    return value


def bound_hub_requests() -> None:
    """Give every later request of huggingface_hub's shared client the timeout `hub_timeout_s()`."""
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils._http import default_client_factory

    timeout = hub_timeout_s()

    def bounded_client():
        client = default_client_factory()  # the library's own hooks (headers, offline mode), with a timeout
        client.timeout = timeout
        return client

    set_client_factory(bounded_client)


def check_hub_reachable(repo_id: str, what: str = "load") -> None:
    """Raise `HubUnreachableError` within `PROBE_TIMEOUT_S` (plus connecting) when the Hub does not answer about
    `repo_id`; nothing in offline mode, or for a name that is no Hub id. HTTP errors (no such repo, no access) are left to the call that follows,
    which words them."""
    import httpx2
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    bound_hub_requests()
    try:
        validate_repo_id(repo_id)
    except HFValidationError:  # not a Hub id (a missing folder, say): the loading that follows says so
        return
    if constants.HF_HUB_OFFLINE:
        return
    try:
        get_hf_file_metadata(hf_hub_url(repo_id, "config.json"), timeout=PROBE_TIMEOUT_S)
    except (httpx2.TimeoutException, httpx2.NetworkError) as err:
        raise HubUnreachableError(
            f"Cannot reach the Hub ({constants.ENDPOINT}) to {what} {repo_id}: {type(err).__name__}"
            f"{f' ({err})' if str(err) else ''}. {OFFLINE_HINT}"
        ) from None
    except (httpx2.HTTPError, OSError):  # an answer, even an error (no such repo, no access), means it is reachable
        return
