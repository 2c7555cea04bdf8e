"""Hub export with a model card, the push, and the model's Gradio Space (`app.py`); their commands: `ovmlv.commands`.

Kept import-light on purpose: `ovmlv --help` should not wait for torch.
"""
