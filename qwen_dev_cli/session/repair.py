"""Tool calls left without a result, and the one repair that closes them.

Every assistant tool call needs a ``tool`` message answering its id before the next
message, or providers refuse the whole conversation (HTTP 400) and it is stuck. A
process killed while its tools ran (a crash, a closed terminal, ``kill -9``) leaves the
last assistant message's calls unanswered in its session file; sessions written by
older versions may have such a gap in the middle.

One rule closes them, for both readers of a conversation: the session loader, which
records the results due at the end of the file when it resumes it
(:meth:`~qwen_dev_cli.session.store.SessionStore.resume`), and the agent, which closes
any history it is given before sending it (:class:`~qwen_dev_cli.agent.Agent`). So the
model is told the same thing whichever path a conversation took. A turn the user
interrupts is another matter: the agent knows why and answers its calls itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core import Message

#: What the model is told of a call whose result never came. The call may have run in
#: part (a command killed halfway), so the model is not told it did nothing.
STOPPED = (
    "not run to completion: qwen-dev stopped before this tool call finished; "
    "check its effect before relying on it"
)


def tool_result(call_id: str, name: str, content: str) -> Message:
    """The ``tool`` message answering call ``call_id`` (``name``: for people reading
    the session; requests leave it out)."""
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}


def unanswered(messages: list[Message]) -> list[tuple[int, Message]]:
    """Each tool call of ``messages`` without a result, as ``(where, result)``: the
    result it is owed, which belongs just before ``messages[where]`` (at the end when
    ``where == len(messages)``). A call is answered by a ``tool`` message with its id
    before the next user or assistant message."""
    missing: list[tuple[int, Message]] = []
    open_calls: dict[str, str] = {}  # id -> name, in the order the calls were made
    for index, message in enumerate(messages):
        if message.get("role") == "tool":
            open_calls.pop(str(message.get("tool_call_id")), None)
            continue
        missing.extend((index, tool_result(i, n, STOPPED)) for i, n in open_calls.items())
        open_calls = {}
        if message.get("role") == "assistant":
            for call in message.get("tool_calls") or ():
                if isinstance(call, dict) and call.get("id"):
                    function = call.get("function")
                    name = function.get("name", "") if isinstance(function, dict) else ""
                    open_calls[str(call["id"])] = str(name)
    end = len(messages)
    missing.extend((end, tool_result(i, n, STOPPED)) for i, n in open_calls.items())
    return missing


def unanswered_at_end(messages: list[Message]) -> list[Message]:
    """The results owed after the last message of ``messages``: what a process killed
    while its tools ran left open."""
    return [result for where, result in unanswered(messages) if where == len(messages)]


def close_unanswered(messages: list[Message]) -> list[Message]:
    """``messages`` with the result it is owed after every tool call that has none (a
    new list; ``messages`` itself is left as it is)."""
    repaired = list(messages)
    for where, result in reversed(unanswered(messages)):
        repaired.insert(where, result)
    return repaired
