"""YAML typed or uploaded by a person, read with PyYAML's safe loader and a cap on what its aliases expand to.

`yaml.safe_load` keeps an alias (`*a`) as a reference to its anchor's node, so "billion laughs" (nine lists of
nine references to the list before) loads in a millisecond, then costs minutes and gigabytes in whatever walks
the result (validation, a form, JSON). `load` composes the document, counts the nodes it stands for with every
alias expanded (each shared node counted once per use, memoised, so the count itself is quick), and refuses a
document over `MAX_NODES` before anything is built from it. PyYAML has no such option; this is the whole check.
"""

from __future__ import annotations

import yaml

MAX_NODES = 100_000  # a merge recipe or a genome is a few hundred nodes


class TooLarge(yaml.YAMLError):
    def __init__(self, nodes: int) -> None:
        super().__init__(f"the YAML stands for more than {MAX_NODES} values once its aliases are expanded")
        self.nodes = nodes


def _expanded(node: yaml.Node, seen: dict[int, int]) -> int:
    if id(node) in seen:
        return seen[id(node)]
    seen[id(node)] = 1  # a node that contains itself (a recursive alias) counts once
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded(child, seen) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded(k, seen) + _expanded(v, seen) for k, v in node.value)
    else:
        size = 1
    seen[id(node)] = min(size, MAX_NODES + 1)
    return seen[id(node)]


def load(text: str):
    """`yaml.safe_load(text)`, or TooLarge (a `yaml.YAMLError`) when its aliases expand past MAX_NODES."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        nodes = _expanded(node, {})
        if nodes > MAX_NODES:
            raise TooLarge(nodes)
        return loader.construct_document(node)
    finally:
        loader.dispose()
