"""The one YAML reader of configs: PyYAML's safe loader without aliases.

An alias (`*name`) repeats an anchored node; nested aliases double the value at each level, so a few hundred bytes
expand to gigabytes (the "billion laughs"). A config never needs one, so they are refused with one line.
"""

from __future__ import annotations

from typing import Any

import yaml


class YamlAliasError(ValueError):
    """A YAML text that uses an alias; the message names where."""


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise YamlAliasError(
                f"{mark.name}, line {mark.line + 1}: YAML aliases (*name) are not accepted in configs; write the "
                "value out in full."
            )
        return super().compose_node(parent, index)


def load_yaml(text: str, where: str = "<text>") -> Any:
    """`text` read as YAML (safe tags only, no aliases); `where` names it in errors."""
    loader = _NoAliasLoader(text)
    loader.name = where
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
