"""Hub export with a model card, the `ovmlv` command line, and the model's Gradio Space (`app.py`).

Kept import-light on purpose: `ovmlv --help` should not wait for torch.
"""
