"""Loading a saved model for the `ovmlv` commands: through ovmlv's own classes (never a repository's code), with
every way it can fail said in one sentence."""

from __future__ import annotations

from pathlib import Path

from ovmlv.arguments import CommandError

from .app import check_model_source
from .hub_access import check_hub_reachable


def load_model(name: str):
    """(model, processor) of the saved model `name` (a folder or Hub id). Weights that do not read are one sentence
    (damaged files listed in an export's checksums.json are named by the check)."""
    from safetensors import SafetensorError

    from ovmlv.modeling_ovmlv import OvmlvModel
    from ovmlv.processing import OvmlvProcessor

    check_model_source(name)
    if not Path(name).expanduser().is_dir():
        check_hub_reachable(name)  # seconds, not minutes of retried downloads, when there is no network
    try:
        return OvmlvModel.from_pretrained(name), OvmlvProcessor.from_pretrained(name)
    except SafetensorError as err:
        raise CommandError(
            f"{name}: its weights (model.safetensors) cannot be read ({err}): the file is damaged or truncated; "
            "re-download or re-export the model."
        ) from err
    except OSError as err:  # a Hub id that cannot be fetched (offline, private, misspelt) or a file missing
        raise CommandError(f"Cannot load the model {name!r}: {err}") from err
