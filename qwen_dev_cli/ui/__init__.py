"""What the user sees: the REPL, the one-shot ``ask`` output, rendering."""
