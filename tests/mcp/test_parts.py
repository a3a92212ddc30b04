"""The pure parts of the MCP client: names, schemas, results, ``${VAR}``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mcp.types import (
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    TextContent,
    TextResourceContents,
)
from pydantic import AnyUrl

from qwen_dev_cli.mcp.expand import expand, missing
from qwen_dev_cli.mcp.names import MAX_NAME, ToolNames, model_name
from qwen_dev_cli.mcp.results import result_text
from qwen_dev_cli.mcp.schemas import MAX_NODES, SchemaRefused, provider_schema

VALID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# --- names ------------------------------------------------------------------------------


def test_a_plain_name_is_prefixed_with_its_server() -> None:
    assert model_name("github", "create_issue") == "mcp__github__create_issue"


@pytest.mark.parametrize("tool", ["a.b/c d", "ünïcode", "x" * 200, "$(rm -rf ~)", ""])
def test_any_name_becomes_a_name_every_provider_accepts(tool: str) -> None:
    assert VALID.match(model_name("s", tool))


def test_long_names_differing_at_the_end_stay_distinct() -> None:
    first, second = model_name("s", "x" * 100 + "a"), model_name("s", "x" * 100 + "b")
    assert len(first) == len(second) == MAX_NAME
    assert first != second


def test_two_tools_sanitised_alike_get_two_names() -> None:
    names = ToolNames()
    first, second = names.claim("s", "a.b"), names.claim("s", "a/b")
    assert first == "mcp__s__a_b"
    assert second != first
    assert VALID.match(second)


# --- schemas ----------------------------------------------------------------------------


def test_references_are_inlined_and_schema_keywords_dropped() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"point": {"$ref": "#/$defs/Point", "description": "where"}},
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}}},
    }
    cleaned = provider_schema(schema)
    assert "$schema" not in cleaned
    assert "$defs" not in cleaned
    assert cleaned["properties"]["point"] == {
        "type": "object",
        "properties": {"x": {"type": "number"}},
        "description": "where",
    }


def test_a_cyclic_reference_ends_in_an_unconstrained_value() -> None:
    schema = {
        "type": "object",
        "properties": {"node": {"$ref": "#/definitions/Node"}},
        "definitions": {
            "Node": {"type": "object", "properties": {"next": {"$ref": "#/definitions/Node"}}}
        },
    }
    cleaned = provider_schema(schema)
    assert cleaned["properties"]["node"]["properties"]["next"] == {}


def test_arrays_get_items_and_the_top_is_an_object() -> None:
    cleaned = provider_schema({"properties": {"tags": {"type": "array"}}})
    assert cleaned["type"] == "object"
    assert cleaned["properties"]["tags"]["items"] == {}
    assert provider_schema(None) == {"type": "object", "properties": {}}
    assert provider_schema({"type": "string"}) == {"type": "object", "properties": {}}


def test_a_property_named_like_a_keyword_is_kept() -> None:
    cleaned = provider_schema({"type": "object", "properties": {"$schema": {"type": "string"}}})
    assert cleaned["properties"] == {"$schema": {"type": "string"}}


def test_a_schema_bomb_is_refused() -> None:
    # Each level refers ten times to the next: small as sent, 10**6 nodes inlined.
    defs: dict[str, object] = {
        f"L{i}": {"anyOf": [{"$ref": f"#/$defs/L{i + 1}"}] * 10} for i in range(6)
    }
    defs["L6"] = {"type": "string"}
    with pytest.raises(SchemaRefused, match=f"{MAX_NODES:,}"):
        provider_schema(
            {"type": "object", "properties": {"x": {"$ref": "#/$defs/L0"}}, "$defs": defs}
        )


def test_a_schema_nested_too_deep_is_refused() -> None:
    node: dict[str, object] = {"type": "string"}
    for _ in range(100):
        node = {"type": "object", "properties": {"a": node}}
    with pytest.raises(SchemaRefused, match="deep"):
        provider_schema(node)


# --- results ----------------------------------------------------------------------------


def test_text_is_the_result_and_images_and_blobs_are_described() -> None:
    result = CallToolResult(
        content=[
            TextContent(type="text", text="hello"),
            ImageContent(type="image", data="QUJD" * 1000, mimeType="image/png"),
            EmbeddedResource(
                type="resource",
                resource=TextResourceContents(uri=AnyUrl("file:///a.txt"), text="inside"),
            ),
            EmbeddedResource(
                type="resource",
                resource=BlobResourceContents(
                    uri=AnyUrl("file:///b.bin"), blob="AAAA", mimeType="application/zip"
                ),
            ),
        ]
    )
    text = result_text(result)
    assert text.startswith("hello\n")
    assert "[image: image/png, about 3,000 bytes, not shown]" in text
    assert "QUJD" not in text
    assert "[resource file:///a.txt]\ninside" in text
    assert "application/zip" in text


def test_a_long_result_is_cut_and_says_how_much_was_left_out() -> None:
    result = CallToolResult(content=[TextContent(type="text", text="y" * 1000)] * 3)
    text = result_text(result, limit=1500)
    assert text.count("y") == 1500
    assert text.endswith("[result cut: 1,500 more characters left out]")


def test_structured_content_alone_is_sent_as_json() -> None:
    result = CallToolResult(content=[], structuredContent={"n": 1})
    assert result_text(result) == '{"n": 1}'


# --- ${VAR} -----------------------------------------------------------------------------


def test_variables_expand_with_defaults() -> None:
    env = {"TOKEN": "t0k", "EMPTY": ""}
    assert expand("Bearer ${TOKEN}", env) == "Bearer t0k"
    assert expand("${NOPE:-fallback}/${EMPTY:-e}", env) == "fallback/e"
    assert expand("${NOPE}", env) == ""
    assert expand("$TOKEN and ${not valid}", env) == "$TOKEN and ${not valid}"
    assert missing(["${TOKEN}", "${NOPE}", "${NOPE:-x}", "${NOPE}"], env) == ["NOPE"]


def test_a_server_s_error_text_cannot_drive_the_terminal() -> None:
    from qwen_dev_cli.mcp.server import _say

    said = _say(RuntimeError("bad\x1b[2J\x1b]0;owned\x07 token\nsecond line"))
    assert "\x1b" not in said
    assert "\x07" not in said
    assert "second line" not in said


# --- a server's tool list -----------------------------------------------------------------


def test_a_server_s_tools_filtered_named_and_a_bomb_left_out_once(tmp_path: Path) -> None:
    from mcp.types import Tool as McpTool

    from qwen_dev_cli.config.mcp_servers import McpServerSettings
    from qwen_dev_cli.mcp.server import McpServer
    from qwen_dev_cli.mcp.servers import MAX_DESCRIPTION, ServerTools

    bomb: dict[str, object] = {
        f"L{i}": {"anyOf": [{"$ref": f"#/$defs/L{i + 1}"}] * 10} for i in range(6)
    }
    settings = McpServerSettings(
        "s",
        command="x",
        include_tools=("ok", "bomb", "gone", "a.b", "a/b"),
        exclude_tools=("gone",),
    )
    server = McpServer(settings, tmp_path / "s.log", {})
    server.state = "ready"
    server.tools = (
        McpTool(name="ok", description="d" * 10_000, inputSchema={"type": "object"}),
        McpTool(
            name="bomb", inputSchema={"properties": {"x": {"$ref": "#/$defs/L0"}}, "$defs": bomb}
        ),
        McpTool(name="gone", inputSchema={}),
        McpTool(name="not_included", inputSchema={}),
        McpTool(name="a.b", inputSchema={}),
        McpTool(name="a/b", inputSchema={}),
    )
    told: list[str] = []
    source = ServerTools(server, told.append)
    names = [tool.name for tool in source.tools()]
    assert names[:2] == ["mcp__s__ok", "mcp__s__a_b"]
    assert len(names) == 3
    assert len(set(names)) == 3
    assert source.tools() == source.tools()  # built once: the registry sees the same tools
    assert len(told) == 1
    assert "'bomb' left out" in told[0]
    assert len(source.tools()[0].description) < MAX_DESCRIPTION + 100
    assert all(tool.kind == "mcp" for tool in source.tools())


def test_a_servers_stderr_log_is_set_aside_when_it_grew_too_large(tmp_path: Path) -> None:
    # Review finding: a server writing stderr without end could fill the disk.
    from qwen_dev_cli.config.mcp_servers import McpServerSettings as Settings
    from qwen_dev_cli.mcp import server as server_module

    log = tmp_path / "s.log"
    log.write_bytes(b"x" * (server_module.MAX_LOG_BYTES + 1))
    server = server_module.McpServer(Settings("s", command="x"), log, {})
    with server._open_log() as handle:
        handle.write(b"fresh\n")
    assert log.read_text() == "fresh\n"
    assert (tmp_path / "s.log.1").stat().st_size == server_module.MAX_LOG_BYTES + 1


def test_all_servers_tools_together_stay_within_the_budget_and_say_what_was_left_out(
    tmp_path: Path,
) -> None:
    import json

    from mcp.types import Tool as McpTool

    from qwen_dev_cli.config.mcp_servers import McpServerSettings
    from qwen_dev_cli.mcp import McpServers
    from qwen_dev_cli.mcp.servers import MAX_TOTAL_SPECS

    told: list[str] = []
    settings = [McpServerSettings("big", command="x"), McpServerSettings("small", command="y")]
    servers = McpServers(settings, tmp_path, {}, told.append)
    big, small = servers.servers
    schema = {"type": "object", "properties": {"x": {"type": "string", "description": "p" * 900}}}
    big.tools = tuple(
        McpTool(name=f"t{i}", description="d" * 900, inputSchema=schema) for i in range(10_000)
    )
    small.tools = (McpTool(name="tiny", inputSchema={}),)
    for server in servers.servers:
        server.state = "ready"
    offered = [tool for source in servers.sources() for tool in source.tools()]
    size = sum(len(json.dumps(tool.spec(), ensure_ascii=False)) for tool in offered)
    assert size <= MAX_TOTAL_SPECS
    assert len(offered) > 50
    assert "mcp__small__tiny" in [tool.name for tool in offered]  # a small one still fits
    assert len(told) == 1
    assert f"{10_000 - len(offered) + 1:,} tools left out" in told[0]
    assert "mcp__big__t9999" not in told[0]  # the first ten named, the rest counted
    assert "more" in told[0]
    [source.tools() for source in servers.sources()]
    assert len(told) == 1  # said once
    rows = servers.report()
    assert len(rows[0]["tools"]) == len(offered) - 1


def test_a_breaker_is_described_closed_open_and_half_open(monkeypatch: pytest.MonkeyPatch) -> None:
    from qwen_dev_cli.mcp import breaker

    guard = breaker.Breaker()
    assert guard.report() == {"state": "closed", "failures": 0, "retry_in_s": None}
    assert breaker.describe(guard.report()) == "closed"
    for _ in range(breaker.BREAKER_THRESHOLD):
        guard.failure()
    shown = guard.report()
    assert shown["state"] == "open"
    assert 0 < shown["retry_in_s"] <= breaker.BREAKER_COOLDOWN
    assert breaker.describe(shown).startswith("open (5 failures in a row; tried again in ")
    monkeypatch.setattr(breaker, "BREAKER_COOLDOWN", 0.0)
    assert guard.report() == {"state": "half-open", "failures": 5, "retry_in_s": None}
    assert breaker.describe(guard.report()) == (
        "half open (5 failures in a row; the next request tries)"
    )
    guard.success()
    assert breaker.describe(guard.report()) == "closed"
    assert breaker.describe(None) == ""  # a stdio server's row
