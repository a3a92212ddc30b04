"""The interactive approver, headless: what the user sees, and what each key decides."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import pytest
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput
from prompt_toolkit.output.plain_text import PlainTextOutput

from qwen_dev_cli.agent.turn import ApprovalRequest
from qwen_dev_cli.ui.approval import InteractiveApprover
from qwen_dev_cli.ui.theme import make_console

DIFF = """--- a/app.py
+++ b/app.py
@@ -1,2 +1,2 @@
 import os
-print("old")
+print("new")
"""
WRITE = ApprovalRequest("write", "edit_file", "edit app.py", diff=DIFF)
COMMAND = ApprovalRequest(
    "command", "run_command", "run: rm -rf build", command="rm -rf build", cwd="/ws", risk="high"
)
TESTS = ApprovalRequest(
    "command", "run_command", "run: pytest -q", command="pytest -q", cwd="/ws", risk="medium"
)


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as pipe_input:
        yield pipe_input


def approver(
    pipe: PipeInput,
    screen: io.StringIO,
    *,
    colour: bool = False,
    allow_edits: Callable[[], None] | None = None,
    questions: io.StringIO | None = None,
) -> InteractiveApprover:
    """The dialog on ``pipe``, showing requests on ``screen`` and asking its questions
    on ``questions`` (if given)."""
    console = make_console(file=screen, width=100, force_terminal=colour, color_system="standard")
    output = DummyOutput() if questions is None else PlainTextOutput(questions)
    return InteractiveApprover(console, input=pipe, output=output, allow_edits=allow_edits)


async def test_a_write_shows_its_diff_and_y_approves(pipe: PipeInput) -> None:
    screen = io.StringIO()
    pipe.send_text("y")
    decision = await approver(pipe, screen).approve(WRITE)
    assert decision.approved
    assert not decision.always
    shown = screen.getvalue()
    assert "edit app.py" in shown
    assert '-print("old")' in shown
    assert '+print("new")' in shown


async def test_the_diff_is_coloured(pipe: PipeInput) -> None:
    screen = io.StringIO()
    pipe.send_text("y")
    await approver(pipe, screen, colour=True).approve(WRITE)
    shown = screen.getvalue()
    assert '\x1b[32m+print("new")' in shown  # green
    assert '\x1b[31m-print("old")' in shown  # red


async def test_a_command_shows_itself_where_it_runs_and_its_risk(pipe: PipeInput) -> None:
    screen = io.StringIO()
    pipe.send_text("y")
    assert (await approver(pipe, screen).approve(COMMAND)).approved
    shown = screen.getvalue()
    assert "rm -rf build" in shown
    assert "/ws" in shown
    assert "high" in shown


async def test_no_carries_the_reason_to_the_model(pipe: PipeInput) -> None:
    pipe.send_text("nnot on main\r")
    decision = await approver(pipe, io.StringIO()).approve(COMMAND)
    assert not decision.approved
    assert decision.reason == "not on main"


async def test_no_without_a_reason_still_says_why(pipe: PipeInput) -> None:
    pipe.send_text("n\r")
    decision = await approver(pipe, io.StringIO()).approve(WRITE)
    assert not decision.approved
    assert decision.reason == "the user declined"


@pytest.mark.parametrize("key", ["\r", "\x03"])
async def test_enter_and_ctrl_c_mean_no(pipe: PipeInput, key: str) -> None:
    pipe.send_text(key + "\r")
    assert not (await approver(pipe, io.StringIO()).approve(COMMAND)).approved


async def test_other_keys_are_ignored_until_a_choice(pipe: PipeInput) -> None:
    pipe.send_text("xzy")
    assert (await approver(pipe, io.StringIO()).approve(COMMAND)).approved


async def test_always_approves_the_same_command_for_the_session(pipe: PipeInput) -> None:
    from qwen_dev_cli.agent.approval import ApprovalPolicy

    # The dialog answers "always"; the agent's policy remembers it and stops asking.
    asked = io.StringIO()
    policy = ApprovalPolicy("ask", approver(pipe, io.StringIO(), questions=asked), interactive=True)
    pipe.send_text("a")
    assert (await policy.decide(TESTS)).approved
    assert "[a]lways this session" in asked.getvalue()
    assert (await policy.decide(TESTS)).approved  # no key sent: it must not ask
    other = ApprovalRequest("command", "run_command", "run: ls", command="ls")
    pipe.send_text("n\r")
    assert not (await policy.decide(other)).approved


async def test_edit_runs_the_command_as_changed(pipe: PipeInput) -> None:
    pipe.send_text("e\x15rm -rf build/tmp\r")  # Ctrl-U clears the offered command
    decision = await approver(pipe, io.StringIO()).approve(COMMAND)
    assert decision.approved
    assert decision.edited_command == "rm -rf build/tmp"


async def test_with_network_approves_this_run_only_and_the_policy_carries_it(
    pipe: PipeInput,
) -> None:
    from qwen_dev_cli.agent.approval import ApprovalPolicy

    policy = ApprovalPolicy("ask", approver(pipe, io.StringIO()), interactive=True)
    pipe.send_text("w")
    verdict = await policy.decide(COMMAND)
    assert verdict.approved
    assert verdict.network
    pipe.send_text("y")
    assert not (await policy.decide(COMMAND)).network  # asked again, and without


async def test_writes_offer_neither_always_nor_edit(pipe: PipeInput) -> None:
    pipe.send_text("aewy")  # a, e and w mean nothing here; y decides
    decision = await approver(pipe, io.StringIO()).approve(WRITE)
    assert decision.approved
    assert not decision.always
    assert decision.edited_command is None


async def test_the_question_runs_inside_the_pause(pipe: PipeInput) -> None:
    events: list[str] = []

    class Pause:
        def __enter__(self) -> None:
            events.append("paused")

        def __exit__(self, *exc: object) -> None:
            events.append("resumed")

    asker = InteractiveApprover(
        make_console(file=io.StringIO()), pause=Pause, input=pipe, output=DummyOutput()
    )
    pipe.send_text("y")
    await asker.approve(WRITE)
    assert events == ["paused", "resumed"]


async def test_critical_commands_are_never_always_approved(pipe: PipeInput) -> None:
    critical = ApprovalRequest(
        "command",
        "run_command",
        "run: rm -rf ~",
        command="rm -rf ~",
        risk="critical",
        risk_reasons=("recursive delete of ~",),
        allow_always=False,
    )
    screen = io.StringIO()
    asker = approver(pipe, screen)
    pipe.send_text("ay")  # "a" is not on offer: ignored; "y" approves this once
    decision = await asker.approve(critical)
    assert decision.approved
    assert not decision.always
    assert "recursive delete of ~" in screen.getvalue()
    pipe.send_text("n\r")  # asked again the next time
    assert not (await asker.approve(critical)).approved


@pytest.mark.parametrize(("keys", "expected"), [("y", True), ("n", False), ("\r", False)])
async def test_confirm_shows_the_diff_and_only_y_says_yes(
    pipe: PipeInput, keys: str, expected: bool
) -> None:
    screen = io.StringIO()
    pipe.send_text(keys)
    title = "app.py was changed after edit_file wrote it; undo turns it into this"
    assert await approver(pipe, screen).confirm(title, DIFF, "Undo anyway?") is expected
    shown = screen.getvalue()
    assert "app.py was changed after edit_file wrote it" in shown
    assert '+print("new")' in shown


async def test_a_high_risk_command_is_not_offered_always(pipe: PipeInput) -> None:
    from qwen_dev_cli.agent.approval import ApprovalPolicy

    asked = io.StringIO()
    policy = ApprovalPolicy("ask", approver(pipe, io.StringIO(), questions=asked), interactive=True)
    pipe.send_text("ay")  # "a" is not on offer for rm -rf build: ignored; "y" runs it once
    verdict = await policy.decide(COMMAND)
    assert verdict.approved
    shown = asked.getvalue()
    assert "Run it? [y]es / [n]o / [w]ith network / [e]dit" in shown
    assert "[a]lways" not in shown
    pipe.send_text("n\r")  # and it is asked again
    assert not (await policy.decide(COMMAND)).approved


async def test_the_pressed_key_is_echoed(pipe: PipeInput) -> None:
    screen = io.StringIO()
    asker = approver(pipe, screen)
    pipe.send_text("y")
    await asker.approve(WRITE)
    assert "→ yes" in screen.getvalue()
    pipe.send_text("\r\r")  # Enter: no, then no reason
    await asker.approve(TESTS)
    assert "→ no" in screen.getvalue()
    pipe.send_text("w")
    await asker.approve(TESTS)
    assert "→ yes, with network access for this run" in screen.getvalue()


async def test_yes_to_all_edits_switches_the_session_to_auto_edit(pipe: PipeInput) -> None:
    from qwen_dev_cli.agent.approval import ApprovalPolicy

    switched: list[str] = []
    screen, asked = io.StringIO(), io.StringIO()
    asker = approver(
        pipe, screen, allow_edits=lambda: switched.append("auto-edit"), questions=asked
    )
    policy = ApprovalPolicy("ask", asker, interactive=True)
    pipe.send_text("a")
    assert (await policy.decide(WRITE)).approved
    assert "[a]ll: yes, and stop asking for edits" in asked.getvalue()
    shown = " ".join(screen.getvalue().split())
    assert "→ yes, and no more questions about edits: approval is auto-edit" in shown
    assert switched == ["auto-edit"]
    assert policy.mode == "auto-edit"
    assert (await policy.decide(WRITE)).approved  # no key sent: the next edit is not asked
    pipe.send_text("n\r")  # commands still are
    assert not (await policy.decide(TESTS)).approved


async def test_without_a_session_to_switch_edits_offer_yes_and_no_only(pipe: PipeInput) -> None:
    asked = io.StringIO()
    pipe.send_text("ay")
    decision = await approver(pipe, io.StringIO(), questions=asked).approve(WRITE)
    assert decision.approved
    assert not decision.always
    assert "Apply this change? [y]es / [n]o:" in asked.getvalue()
    assert "[a]ll" not in asked.getvalue()
