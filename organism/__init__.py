"""The research harness around the model organism: the synthetic world, the tiny towers, the committed organism
towers and how they are made, and the experiments run on them (the demo, the method comparison, the claims table,
the step budgets).

It imports the training library (`ovmlv.training`) and the model; the library never imports it
(tests/test_package_layout.py). Like open_clip's training package beside open_clip, it is code that uses the product
to measure it, not part of what a user trains or deploys with.
"""
