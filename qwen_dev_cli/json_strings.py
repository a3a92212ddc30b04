"""Decoded JSON with each of its strings (keys too) passed through a function, in place
and without recursion: a value may be nested as deep as ``json`` reads. A leaf: it
imports nothing of the package."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def map_strings(value: Any, change: Callable[[str], Any]) -> Any:
    """``value`` with every string in it, keys included, replaced by ``change`` of it
    (dicts rebuilt in their order, lists changed in place)."""

    def changed(item: Any) -> Any:
        return change(item) if type(item) is str else item

    value = changed(value)
    stack = [value]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            items = [(changed(key), changed(item)) for key, item in node.items()]
            node.clear()
            node.update(items)
            stack.extend(item for _, item in items if type(item) in (dict, list))
        elif type(node) is list:
            for index, item in enumerate(node):
                node[index] = item = changed(item)
                if type(item) in (dict, list):
                    stack.append(item)
    return value
