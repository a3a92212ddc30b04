"""``ask``'s stdout, one output per format: what each writes as the turn goes and at its
end (the real processes are driven in tests/test_cli_ask.py)."""

from __future__ import annotations

import io
import json

import pytest

from qwen_dev_cli.agent.turn import (
    AssistantRestart,
    AssistantText,
    MessageAdded,
    ToolCallStarted,
    TurnEnded,
    TurnResult,
)
from qwen_dev_cli.core import Usage
from qwen_dev_cli.core.errors import AuthenticationError
from qwen_dev_cli.ui.output import JsonObject, StreamedText, WholeText, output_for

RESULT = TurnResult("the answer", "lab", "m", Usage(3, 2, 5), 1, 12.4, 1, finish_reason="stop")


@pytest.mark.parametrize(
    ("output_format", "stream", "kind"),
    [
        ("json", True, JsonObject),
        ("json", False, JsonObject),
        ("text", True, StreamedText),
        ("text", False, WholeText),
    ],
)
def test_the_output_is_chosen_once_by_format(output_format: str, stream: bool, kind: type) -> None:
    out = io.StringIO()
    chosen = output_for(output_format, stream=stream, out=out, err=io.StringIO(), show_tools=False)  # type: ignore[arg-type]  # both literals are valid
    assert isinstance(chosen, kind)


def test_json_writes_exactly_one_object_whatever_streamed() -> None:
    out = io.StringIO()
    json_out = JsonObject(out)
    for event in (AssistantText("the "), AssistantText("answer"), TurnEnded(RESULT)):
        json_out(event)
    assert out.getvalue() == ""
    json_out.answered(RESULT, {"total_requests": 1}, "s1")
    (line,) = out.getvalue().splitlines()
    payload = json.loads(line)
    assert payload["ok"] is True
    assert payload["text"] == "the answer"
    assert payload["session_id"] == "s1"
    assert payload["latency_ms"] == 12
    assert payload["finish_reason"] == "stop"


def test_json_failure_names_the_provider() -> None:
    out = io.StringIO()
    JsonObject(out).failed(AuthenticationError("bad key", provider="lab"), {})
    payload = json.loads(out.getvalue())
    assert payload["ok"] is False
    assert payload["error"]["providers"] == [{"name": "lab", "error": "bad key"}]


def test_text_into_a_pipe_is_written_once_per_complete_message() -> None:
    out, err = io.StringIO(), io.StringIO()
    text = StreamedText(out, err, show_tools=True)
    text(AssistantText("a partial ans"))
    text(AssistantRestart("connection reset"))  # the partial answer is never shown
    text(AssistantText("the answer"))
    text(MessageAdded({"role": "assistant", "content": "the answer"}))
    text(ToolCallStarted("c1", "read_file", {"path": "a.py"}))
    text.answered(RESULT, {}, "s1")
    assert out.getvalue() == "the answer\n"
    assert err.getvalue() == 'qwen-dev: tool read_file {"path": "a.py"}\n'


def test_whole_text_prints_the_final_answer_only_at_the_end() -> None:
    out = io.StringIO()
    whole = WholeText(out)
    whole(AssistantText("the answer"))
    assert out.getvalue() == ""
    whole.answered(RESULT, {}, "s1")
    whole.failed(AuthenticationError("bad key"), {})
    assert out.getvalue() == "the answer\n"
