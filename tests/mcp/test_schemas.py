"""Nasty schemas, as real servers send them, made acceptable to the strict providers.

Three judges: a checker of the subset this module promises (no combinators, one type,
arrays with items, required names that exist, known keywords only), the JSON Schema
meta-schema, and llama.cpp's own grammar converter (llama-cpp-python's port of it: what
llama.cpp's server runs on a tool's schema, and fails the whole request on). Values the
original accepts are still accepted where the flattening only relaxes."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import jsonschema  # type: ignore[import-untyped]  # the SDK's dependency, no stubs installed
import pytest
from pydantic import BaseModel, Field

from qwen_dev_cli.config.mcp_servers import McpServerSettings
from qwen_dev_cli.mcp import McpServers
from qwen_dev_cli.mcp.schemas import _KEPT, MAX_SCHEMA_CHARS, SchemaRefused, provider_schema

#: llama-cpp-python comes with the optional local extra (scripts/bootstrap installs it).
LLAMA = importlib.util.find_spec("llama_cpp") is not None
STRUCTURE = frozenset({"properties", "items", "additionalProperties"})
TYPES = {"string", "number", "integer", "boolean", "object", "array", "null"}


def strict(schema: object, path: str = "") -> None:
    """The subset every provider takes, or an AssertionError saying where it is left."""
    assert isinstance(schema, dict), path
    assert set(schema) <= _KEPT | STRUCTURE, f"{path}: {set(schema) - _KEPT - STRUCTURE}"
    if schema and "enum" not in schema:
        assert schema.get("type") in TYPES, f"{path}: type {schema.get('type')!r}"
    if schema.get("type") == "array":
        assert isinstance(schema.get("items"), dict), f"{path}: an array without items"
    for name, item in schema.get("properties", {}).items():
        strict(item, f"{path}.{name}")
    if "required" in schema:
        assert set(schema["required"]) <= set(schema.get("properties", {})), path
    if isinstance(schema.get("items"), dict):
        strict(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        strict(schema["additionalProperties"], f"{path}{{}}")


def judged(original: dict[str, Any]) -> dict[str, Any]:
    flat = provider_schema(original)
    strict(flat)
    jsonschema.Draft202012Validator.check_schema(flat)
    if LLAMA:
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        json_schema_to_gbnf(json.dumps(flat))
    return flat


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = 9


class Dog(BaseModel):
    kind: Literal["dog"]
    bark: str | None = None


class Args(BaseModel):
    """What FastMCP and every pydantic server generate."""

    name: Annotated[str, Field(pattern=r"^[a-z]+(-[a-z0-9]+)*$")]
    pet: Annotated[Cat | Dog, Field(discriminator="kind")]
    tags: list[str] | None = None
    pair: tuple[int, int]
    scores: dict[str, int]
    mode: Literal["fast", "slow"] | None = None
    count: int | str = 1
    host: str | None = Field(default=None, json_schema_extra={"format": "hostname"})


def test_a_pydantic_schema_with_unions_tuples_and_optionals() -> None:
    flat = judged(Args.model_json_schema())
    props = flat["properties"]
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "title": "Tags"}
    assert props["mode"]["enum"] == ["fast", "slow"]
    assert props["pet"]["type"] == "object"
    assert props["pet"]["properties"]["kind"]["enum"] == ["cat", "dog"]
    assert set(props["pet"]["properties"]) == {"kind", "lives", "bark"}
    assert props["pet"]["required"] == ["kind"]
    assert props["pair"]["items"] == {"type": "integer"}
    assert "pattern: ^[a-z]+(-[a-z0-9]+)*$" in props["name"]["description"]
    assert "format: hostname" in props["host"]["description"]
    assert "one of: integer, string" in props["count"]["description"]
    for value in (
        {"name": "a-b", "pet": {"kind": "dog"}, "pair": [1, 2], "scores": {"x": 1}},
        {"name": "a", "pet": {"kind": "cat", "lives": 3}, "pair": [0, 0], "scores": {}},
    ):
        jsonschema.validate(value, Args.model_json_schema())
        jsonschema.validate(value, flat)


NASTY: dict[str, Any] = {
    # zod-to-json-schema, type arrays, const, patternProperties, if/then/else, not,
    # tuples, boolean schemas, a remote $ref, a lookahead pattern, vendor keys.
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "x-vendor": {"anything": True},
    "properties": {
        "path": {"type": "string", "pattern": "^(?!/etc).*$", "format": "uri-reference"},
        "maybe": {"type": ["string", "null"], "description": "optional text"},
        "either": {"type": ["integer", "boolean"]},
        "fixed": {"const": "v1"},
        "env": {"type": "object", "patternProperties": {"^[A-Z_]+$": {"type": "string"}}},
        "cond": {
            "type": "object",
            "properties": {"a": {"type": "string"}},
            "if": {"properties": {"a": {"const": "x"}}},
            "then": {"required": ["a"]},
            "else": {"not": {"required": ["a"]}},
        },
        "notnull": {"not": {"type": "null"}, "description": "anything but null"},
        "point": {"type": "array", "items": [{"type": "number"}, {"type": "number"}]},
        "open": True,
        "never": False,
        "remote": {"$ref": "https://example.com/schemas/thing.json", "description": "far"},
        "merged": {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"type": "integer"}}, "required": ["b"]},
            ]
        },
        "mixed": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "weird": {"type": "strnig", "description": "a typo'd type"},
        "ghost": {"type": "array"},
    },
    "required": ["path", "gone"],
}


def test_everything_the_strict_ones_refuse_is_flattened() -> None:
    if LLAMA:
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        with pytest.raises(AssertionError, match="remote"):  # llama.cpp fails the request
            json_schema_to_gbnf(json.dumps(NASTY))
    flat = judged({**NASTY, "properties": {**NASTY["properties"], "ghost": {"type": "string"}}})
    props = flat["properties"]
    assert "^(?!/etc).*$" in props["path"]["description"]
    assert props["maybe"] == {"type": "string", "description": "optional text"}
    assert props["either"]["type"] == "integer"
    assert "one of: integer, boolean" in props["either"]["description"]
    assert props["fixed"] == {"enum": ["v1"]}
    assert props["env"] == {"type": "object"}
    assert props["cond"] == {"type": "object", "properties": {"a": {"type": "string"}}}
    assert props["notnull"] == {"type": "string", "description": "anything but null"}
    assert props["point"]["items"] == {"type": "number"}
    assert props["open"] == {}
    assert "never" not in props
    assert props["remote"] == {"type": "string", "description": "far"}
    assert props["merged"]["required"] == ["a", "b"]
    assert set(props["merged"]["properties"]) == {"a", "b"}
    assert props["mixed"]["type"] == "string"
    assert "also accepted: array" in props["mixed"]["description"]
    assert props["weird"]["type"] == "string"
    assert flat["required"] == ["path"]
    assert flat["additionalProperties"] is False
    assert "x-vendor" not in flat
    assert "$schema" not in flat


def test_an_array_without_items_gets_them() -> None:
    # (llama-cpp-python's port fails on ``items: {}``, which llama.cpp itself takes.)
    flat = provider_schema({"properties": {"ghost": {"type": "array"}}})
    strict(flat)
    assert flat["properties"]["ghost"]["items"] == {}


def test_a_top_level_union_of_objects_becomes_one_object() -> None:
    flat = judged(
        {
            "oneOf": [
                {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
                {"type": "object", "properties": {"name": {"type": "string"}}},
            ]
        }
    )
    assert set(flat["properties"]) == {"id", "name"}
    assert "required" not in flat


def test_a_schema_too_large_as_sent_is_refused() -> None:
    big = {"type": "object", "properties": {"x": {"type": "string", "description": "d" * 60_000}}}
    with pytest.raises(SchemaRefused, match=f"{MAX_SCHEMA_CHARS:,}"):
        provider_schema(big)


def test_an_enum_of_a_million_values_is_refused() -> None:
    with pytest.raises(SchemaRefused, match="parts"):
        provider_schema({"properties": {"x": {"enum": list(range(1_000_000))}}})


EVERYTHING = (
    Path(__file__).parents[2]
    / ".mcp-servers/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
)


@pytest.mark.slow
@pytest.mark.skipif(not EVERYTHING.exists(), reason="npm MCP servers not installed")
async def test_every_tool_of_a_server_no_one_here_wrote_passes(tmp_path: Path) -> None:
    settings = McpServerSettings("everything", command="node", args=(str(EVERYTHING), "stdio"))
    servers = McpServers([settings], tmp_path / "logs", os.environ, print)
    try:
        await servers.wait_ready()
        tools = servers.servers[0].tools
        assert len(tools) > 5
        for tool in tools:
            judged(tool.inputSchema)
    finally:
        await servers.aclose()
