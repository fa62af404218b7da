"""YAML for prompt and test files: `yaml.safe_load` with a bound on what aliases expand to.

An alias (`*name`) repeats the node its anchor (`&name`) marks, so a few hundred bytes of nested anchors (a
"billion laughs" file) describe gigabytes once the document is serialised: a 704-byte prompt file was stored
as a 58 MB template. After composing each document, and before building any Python object, the node graph is
measured as if every alias were written out (scalars by their length, collections by their items, plus one
per node); past `limit` the file is refused with an error at the alias's line. An alias inside the node it
names (a cycle) is refused too.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError


class _BoundedLoader(yaml.SafeLoader):
    limit: int = 0

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None:
            _check_expansion(node, self.limit)
        return node


def _check_expansion(root: yaml.Node, limit: int) -> None:
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        known = sizes.get(key)
        if known is not None:
            return known
        if key in open_nodes:
            raise ComposerError(None, None, "an alias refers to the node it is part of", node.start_mark)
        open_nodes.add(key)
        if isinstance(node, yaml.ScalarNode):
            total = 1 + len(str(node.value))
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        else:
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        open_nodes.discard(key)
        if total > limit:
            raise ComposerError(
                None,
                None,
                f"the document expands to more than {limit:,} characters once its aliases (*name) are written "
                "out; use fewer or smaller aliases",
                node.start_mark,
            )
        sizes[key] = total
        return total

    size(root)


def load(text: str, *, limit: int) -> Any:
    """The document in `text` (like `yaml.safe_load`); `yaml.YAMLError` if it is invalid, nested too deeply,
    or expands past `limit` characters through aliases."""
    loader = _BoundedLoader(text)
    loader.limit = limit
    try:
        return loader.get_single_data()
    except RecursionError:
        raise ComposerError(None, None, "the document is nested too deeply", None) from None
    finally:
        loader.dispose()
