"""How the model organism is made: a tiny CLIP and a tiny T5 pretrained here on the synthetic world, committed under
`organism/towers/`, so that the paper's claims can be shown offline on towers that already know things.

Like the real towers: the CLIP sees objects in a frame but not motion and has never met a synonym (`stills`,
`clip_pretraining`); the T5 knows what every word of the world means, synonyms included (`corpus`,
`t5_pretraining`). `ovmlv organism` makes and measures them (`make`, `targets`); docs/organism.md
says what the world holds, how it is split for open-vocabulary evaluation, and what the towers reach.
"""
