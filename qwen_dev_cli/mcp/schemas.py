"""A server's input schema made acceptable to every provider.

Servers write JSON Schema as their SDKs generate it: ``$ref`` into ``$defs``, a
``$schema`` line, arrays without ``items``. Several providers refuse each of those, and
a whole request fails for one bad tool. So references are inlined (a cycle, or a
reference that leads nowhere, becomes an unconstrained value), ``$schema``/``$id``/
``$defs``/``definitions``/``$comment`` go, every array gets ``items`` and the top is an
object with ``properties``.

A schema is the server's to write, and a hostile server could send one that is huge or
grows without end as its references are inlined: :class:`SchemaRefused` is raised past
:data:`MAX_NODES` nodes or :data:`MAX_DEPTH` levels, and the tool is left out.
"""

from __future__ import annotations

from typing import Any, Final

#: Nodes (objects, arrays and values) of one tool's schema after inlining.
MAX_NODES: Final = 5_000
#: Nesting of one tool's schema after inlining.
MAX_DEPTH: Final = 32

_DROPPED: Final = frozenset({"$schema", "$id", "$defs", "definitions", "$comment"})


class SchemaRefused(ValueError):
    """A schema too large or too deep to offer."""


def provider_schema(schema: object) -> dict[str, Any]:
    """``schema`` (a tool's ``inputSchema``) as every provider accepts it."""
    if not isinstance(schema, dict):
        schema = {}
    definitions: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        found = schema.get(key)
        if isinstance(found, dict):
            definitions.update({f"#/{key}/{name}": value for name, value in found.items()})
    counter = [0]
    result = _clean(schema, definitions, (), 0, counter)
    if not isinstance(result, dict):
        result = {}
    result["type"] = "object"
    if not isinstance(result.get("properties"), dict):
        result["properties"] = {}
    return result


def _clean(
    node: object, definitions: dict[str, Any], seen: tuple[str, ...], depth: int, counter: list[int]
) -> object:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise SchemaRefused(f"its schema has more than {MAX_NODES:,} parts")
    if depth > MAX_DEPTH:
        raise SchemaRefused(f"its schema is nested more than {MAX_DEPTH} levels deep")
    if isinstance(node, list):
        return [_clean(item, definitions, seen, depth + 1, counter) for item in node]
    if not isinstance(node, dict):
        return node
    reference = node.get("$ref")
    if isinstance(reference, str):
        target = definitions.get(reference)
        if target is None or reference in seen:
            # Nowhere to go, or back where it came from: any value will do.
            return {key: value for key, value in node.items() if key == "description"}
        inlined = _clean(target, definitions, (*seen, reference), depth + 1, counter)
        if isinstance(inlined, dict) and isinstance(node.get("description"), str):
            inlined = {**inlined, "description": node["description"]}
        return inlined
    cleaned: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties" and isinstance(value, dict):
            # Property names are names, not schema keywords: only their schemas are cleaned.
            cleaned[key] = {
                name: _clean(item, definitions, seen, depth + 1, counter)
                for name, item in value.items()
            }
        else:
            cleaned[key] = _clean(value, definitions, seen, depth + 1, counter)
    kind = cleaned.get("type")
    if (kind == "array" or (isinstance(kind, list) and "array" in kind)) and not isinstance(
        cleaned.get("items"), dict
    ):
        cleaned["items"] = {}
    return cleaned
