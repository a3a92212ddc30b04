"""One user turn: model <-> tool calls until a final answer. Knows no terminal: it talks
to an :class:`~qwen_dev_cli.agent.turn.Approver` and an event sink, so the REPL and
``ask`` share the same loop."""
