"""`ovmlv app`: serve the model's Gradio app. Its options are the app's own (`ovmlv.app`), which also runs
alone as a Space's `app.py`, without ovmlv, so it keeps its parser; gradio and torch load when it runs."""

from __future__ import annotations

import argparse

from ovmlv import app
from ovmlv.arguments import EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    app.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    app.serve(args.model, host=args.host, port=args.port, trust_remote_code=args.trust_remote_code)
    return EXIT_OK
