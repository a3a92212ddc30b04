"""A server's input schema made acceptable to every provider.

Servers write JSON Schema as their SDKs generate it: ``$ref`` into ``$defs``, a
``$schema`` line, arrays without ``items``, ``anyOf`` with ``null`` for every optional
field (pydantic), ``const``, type arrays like ``["string", "null"]``, tuples,
``patternProperties``, ``if``/``then``. The strict OpenAI-compatible servers refuse
some of each (SambaNova and vLLM's guided decoding reject what they cannot compile,
llama.cpp fails the whole request on a pattern its grammar cannot express, Ollama
silently drops what it does not know, leaving a property with no type), and a whole
request fails for one bad tool. So one schema every provider takes is made here (the
agent sends one request down a chain of providers, so the schema cannot differ per
provider):

- references inlined (a cycle, or a reference that leads nowhere, becomes an
  unconstrained value);
- only the keywords of :data:`_KEPT` kept (``$schema``, ``$defs``, ``patternProperties``,
  ``if``/``then``/``else``, ``not``, vendor ``x-`` keys and the rest go);
- ``anyOf``/``oneOf`` flattened: a null variant dropped (an optional field), enums and
  ``const`` variants joined into one ``enum``, object variants merged into one object
  (every property, required only what all require), other mixtures take their first
  variant with the others named in the description; ``allOf`` merged into one;
  a null default dropped;
- a type array narrowed to its one non-null type (several: the first, all named in the
  description); ``const`` becomes a one-value ``enum``; a schema with keywords but no
  type gets one (llama.cpp's grammar refuses it otherwise; ``{}`` stays "any value");
- a ``pattern`` and an unknown ``format`` moved into the description; a tuple
  (``items`` or ``prefixItems`` as a list) becomes an array of its items' schema if
  they share one, else of any value, its items named in the description;
  every array gets ``items``; ``required`` names only properties that exist; the top is
  an object with ``properties``.

A schema is the server's to write, and a hostile server could send one that is huge or
grows without end as its references are inlined: :class:`SchemaRefused` is raised past
:data:`MAX_NODES` nodes or :data:`MAX_DEPTH` levels, or once it is over
:data:`MAX_SCHEMA_CHARS` characters as sent, and the tool is left out.
"""

from __future__ import annotations

import json
from typing import Any, Final

#: Nodes (objects, arrays and values) of one tool's schema after inlining.
MAX_NODES: Final = 5_000
#: Nesting of one tool's schema after inlining.
MAX_DEPTH: Final = 32
#: Characters of one tool's schema as sent.
MAX_SCHEMA_CHARS: Final = 50_000

#: Keywords kept as they are (their values are data, not schemas).
_KEPT: Final = frozenset(
    {
        "type",
        "description",
        "title",
        "default",
        "enum",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "uniqueItems",
        "required",
        "examples",
    }
)
#: String formats the grammars know (llama.cpp's, llguidance's, which refuses others).
_FORMATS: Final = frozenset({"date", "time", "date-time", "uuid", "email"})
_TYPES: Final = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})


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
    result = _Cleaner(definitions).clean(schema, (), 0) or {}
    result.pop("enum", None)
    result["type"] = "object"
    if not isinstance(result.get("properties"), dict):
        result["properties"] = {}
    size = len(json.dumps(result, ensure_ascii=False))
    if size > MAX_SCHEMA_CHARS:
        raise SchemaRefused(f"its schema is {size:,} characters (at most {MAX_SCHEMA_CHARS:,})")
    return result


class _Cleaner:
    def __init__(self, definitions: dict[str, Any]) -> None:
        self.definitions = definitions
        self.nodes = 0

    def count(self, depth: int, amount: int = 1) -> None:
        self.nodes += amount
        if self.nodes > MAX_NODES:
            raise SchemaRefused(f"its schema has more than {MAX_NODES:,} parts")
        if depth > MAX_DEPTH:
            raise SchemaRefused(f"its schema is nested more than {MAX_DEPTH} levels deep")

    def clean(self, node: object, seen: tuple[str, ...], depth: int) -> dict[str, Any] | None:
        """``node`` as a schema every provider takes; ``None`` for the schema ``false``
        (no value allowed: a property of that schema is left out)."""
        self.count(depth)
        if node is False:
            return None
        if not isinstance(node, dict):
            return {}  # ``true``, or not a schema at all: any value
        reference = node.get("$ref")
        if isinstance(reference, str):
            target = self.definitions.get(reference)
            described = {k: v for k, v in node.items() if k == "description"}
            if target is None or reference in seen:
                # Nowhere to go, or back where it came from: any value (of the type it
                # refers to, if it says one; a described value needs a type, see _finish).
                kind = target.get("type") if isinstance(target, dict) else None
                if described:
                    described["type"] = (
                        kind if isinstance(kind, str) and kind in _TYPES else "string"
                    )
                return described
            inlined = self.clean(target, (*seen, reference), depth + 1)
            return None if inlined is None else {**inlined, **described}
        out: dict[str, Any] = {}
        notes: list[str] = []
        #: The types a value may have, when several were left out (the first is given).
        types: list[str] = []
        for key, value in node.items():
            if key in _KEPT:
                self.count(depth + 1, _size(value))
                out[key] = value
        if out.get("default", 0) is None:  # (a null default: only "optional")
            del out["default"]
        if "const" in node and "enum" not in out:
            out["enum"] = [node["const"]]
        if not isinstance(out.get("enum"), list) or not out["enum"]:
            out.pop("enum", None)
        self._types(out, notes, types)
        self._strings(node, out, notes)
        properties = node.get("properties")
        if isinstance(properties, dict):
            # Property names are names, not keywords: only their schemas are cleaned.
            cleaned = {
                str(name): self.clean(item, seen, depth + 1) for name, item in properties.items()
            }
            out["properties"] = {name: item for name, item in cleaned.items() if item is not None}
        extra = node.get("additionalProperties")
        if isinstance(extra, bool):
            out["additionalProperties"] = extra
        elif isinstance(extra, dict):
            cleaned_extra = self.clean(extra, seen, depth + 1)
            out["additionalProperties"] = False if cleaned_extra is None else cleaned_extra
        self._items(node, out, seen, depth)
        notes.extend(out.pop("_notes", ()))
        for key in ("allOf", "anyOf", "oneOf"):
            variants = node.get(key)
            if not isinstance(variants, list) or not variants:
                continue
            parts = [self.clean(item, seen, depth + 1) for item in variants]
            if key == "allOf":
                if any(part is None for part in parts):
                    return None
                merged = _all_of([part for part in parts if part is not None])
            else:
                merged = _any_of([part for part in parts if part is not None], notes, types)
            out = _merge(out, merged)
        self._finish(out, notes, types)
        return out

    def _types(self, out: dict[str, Any], notes: list[str], types: list[str]) -> None:
        kind = out.get("type")
        if isinstance(kind, list):
            named = [t for t in dict.fromkeys(kind) if isinstance(t, str) and t in _TYPES]
            real = [t for t in named if t != "null"] or named
            if len(real) == 1:
                out["type"] = real[0]
            else:
                del out["type"]
                if real:
                    notes.append(f"one of: {', '.join(real)}")
                    types.extend(real)
        elif kind is not None and kind not in _TYPES:
            del out["type"]

    def _strings(self, node: dict[str, Any], out: dict[str, Any], notes: list[str]) -> None:
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            notes.append(f"pattern: {pattern[:200]}")
        form = out.get("format")
        if form is not None and form not in _FORMATS:
            del out["format"]
            if isinstance(form, str):
                notes.append(f"format: {form[:60]}")

    def _items(
        self, node: dict[str, Any], out: dict[str, Any], seen: tuple[str, ...], depth: int
    ) -> None:
        items = node.get("items")
        tuple_ = items if isinstance(items, list) else None  # draft 4's tuples
        if items is None or tuple_ is not None:
            prefix = node.get("prefixItems")
            if tuple_ is None and isinstance(prefix, list):
                tuple_ = prefix
        if tuple_ is not None:
            # A tuple: its items' one schema if they share it, else any value.
            cleaned = [self.clean(item, seen, depth + 1) or {} for item in tuple_]
            same = all(item == cleaned[0] for item in cleaned)
            out["items"] = cleaned[0] if cleaned and same else {}
            if cleaned and not same:
                kinds = ", ".join(str(item.get("type", "any")) for item in cleaned[:8])
                out.setdefault("_notes", []).append(f"items in order: {kinds}")
        elif items is not None:
            out["items"] = self.clean(items, seen, depth + 1) or {}

    def _finish(self, out: dict[str, Any], notes: list[str], types: list[str]) -> None:
        if "type" not in out and "enum" not in out and (out or notes):
            # llama.cpp's grammar refuses a schema with keywords but no type ({} alone
            # is its "any value"): the type it must have, or the first it may have, or
            # a string (what a model can always write).
            if "properties" in out or "additionalProperties" in out:
                out["type"] = "object"
            elif "items" in out:
                out["type"] = "array"
            else:
                out["type"] = types[0] if types else "string"
        kind = out.get("type")
        if (kind == "array" or "items" in out) and not isinstance(out.get("items"), dict):
            out["items"] = {}
        required = out.get("required")
        if required is not None:
            names = out.get("properties")
            kept = [
                name
                for name in dict.fromkeys(required if isinstance(required, list) else ())
                if isinstance(name, str) and (not isinstance(names, dict) or name in names)
            ]
            if kept:
                out["required"] = kept
            else:
                del out["required"]
        if notes:
            said = out.get("description")
            note = "; ".join(notes)
            out["description"] = f"{said} ({note})" if isinstance(said, str) and said else note


def _size(value: object) -> int:
    """Nodes of a keyword's value (a hostile enum of a million values counts)."""
    if isinstance(value, list):
        return 1 + len(value)
    if isinstance(value, dict):
        return 1 + len(value)
    return 1


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra``'s keywords under ``base``'s (a field's own description wins)."""
    merged = {**extra, **base}
    if "properties" in base and "properties" in extra:
        merged["properties"] = {**extra["properties"], **base["properties"]}
        order = [*base["properties"], *extra["properties"]]
        merged["properties"] = {name: merged["properties"][name] for name in dict.fromkeys(order)}
    if "required" in base and "required" in extra:
        merged["required"] = list(dict.fromkeys([*base["required"], *extra["required"]]))
    said, more = base.get("description"), extra.get("description")
    if isinstance(said, str) and isinstance(more, str) and more not in said:
        merged["description"] = f"{said} ({more})"
    return merged


def _all_of(parts: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in parts:
        merged = _merge(merged, part)
    return merged


def _any_of(parts: list[dict[str, Any]], notes: list[str], types: list[str]) -> dict[str, Any]:
    """One schema for a value that may match any of ``parts``."""
    real = [part for part in parts if part.get("type") != "null"]
    if not real:
        return {}
    if len(real) == 1:
        return real[0]
    if all("enum" in part for part in real):
        values = [value for part in real for value in part["enum"]]
        kinds = {part.get("type") for part in real}
        joined: dict[str, Any] = {"enum": values}
        if len(kinds) == 1 and None not in kinds:
            joined["type"] = kinds.pop()
        return joined
    if all(part.get("type") == "object" or "properties" in part for part in real):
        merged: dict[str, Any] = {"type": "object", "properties": {}}
        required: set[str] | None = None
        for part in real:
            for name, schema in part.get("properties", {}).items():
                known = merged["properties"].setdefault(name, schema)
                if known is not schema and "enum" in known and "enum" in schema:
                    # A discriminator (kind: "cat" in one, "dog" in the other): either.
                    values = list(known["enum"]) + [
                        v for v in schema["enum"] if v not in known["enum"]
                    ]
                    merged["properties"][name] = {**known, "enum": values}
            these = set(part.get("required", ()))
            required = these if required is None else required & these
        if required:
            merged["required"] = [name for name in merged["properties"] if name in required]
        notes.append(f"one of {len(real)} shapes; give the properties of one")
        return merged
    simple = [part for part in real if set(part) <= {"type", "description", "title", "format"}]
    if len(simple) == len(real) and all(isinstance(part.get("type"), str) for part in real):
        kinds_in_order = list(dict.fromkeys(str(part["type"]) for part in real))
        if len(kinds_in_order) == 1:
            return {"type": kinds_in_order[0]}
        notes.append(f"one of: {', '.join(kinds_in_order)}")
        types.extend(kinds_in_order)
        return {}
    others = ", ".join(str(part.get("type", "other")) for part in real[1:])
    notes.append(f"also accepted: {others}")
    return real[0]
