"""The `ovmlv` subcommands, one thin module each (or one per group, as index/tag/search): `add_arguments(parser)`
builds its options with argparse alone, and `run(args) -> exit code` imports the library only then and calls it
with typed arguments. So `ovmlv COMMAND --help` never waits for torch; `ovmlv.cli` lists them."""
