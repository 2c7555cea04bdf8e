"""Hub export with a model card, and the push; their commands: `ovmlv.commands` (the Gradio app is `ovmlv.app`).

Kept import-light on purpose: `ovmlv --help` should not wait for torch.
"""
