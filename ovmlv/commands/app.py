"""`ovmlv app`: serve the model's Gradio app. Its options are the app's own (`ovmlv.app`), which also runs
alone as a Space's `app.py`, without ovmlv, so it keeps its parser; gradio and torch load when it runs."""

from __future__ import annotations

import argparse

from ovmlv import app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    app.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return app.run(args)
