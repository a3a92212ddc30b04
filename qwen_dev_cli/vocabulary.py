"""The words several layers share, defined once: approval modes (config, agent, ui) and
risk levels (tools, agent, ui). A leaf: it imports nothing of ours, so any layer may
use it without an arrow pointing back up."""

from __future__ import annotations

from typing import Final, Literal, get_args

#: What tool calls may do unasked: ``ask`` (reads only), ``auto-edit`` (file changes
#: too), ``yolo`` (commands too, in the sandbox; critical ones still ask).
ApprovalMode = Literal["ask", "auto-edit", "yolo"]
APPROVAL_MODES: Final[tuple[ApprovalMode, ...]] = get_args(ApprovalMode)

#: How much harm a command could do, lowest first.
Risk = Literal["low", "medium", "high", "critical"]
RISK_LEVELS: Final[tuple[Risk, ...]] = get_args(Risk)
