"""Model-controlled text cannot drive the terminal it is shown on."""

from __future__ import annotations

import io

from qwen_dev_cli.agent.turn import ApprovalRequest
from qwen_dev_cli.ui.approval import request_view
from qwen_dev_cli.ui.safe_text import printable
from qwen_dev_cli.ui.theme import make_console


def test_escapes_and_direction_overrides_become_visible() -> None:
    assert printable("ls \x1b[8m; rm -rf src\x1b[0m") == "ls \\x1b[8m; rm -rf src\\x1b[0m"
    assert printable("abc\u202edef") == "abc\\u202edef"
    assert printable("line one\n\tline two") == "line one\n\tline two"


def test_a_hidden_command_is_shown_in_the_approval_dialog() -> None:
    sneaky = "ls \x1b[8m; rm -rf src\x1b[0m"
    request = ApprovalRequest("command", "run_command", f"run: {sneaky}", command=sneaky)
    out = io.StringIO()
    make_console(file=out, force_terminal=True, width=120).print(request_view(request))
    shown = out.getvalue()
    assert "\x1b[8m" not in shown  # the conceal sequence never reaches the terminal
    assert "rm -rf src" in shown
