"""``qwen-dev batch``: many prompts at the account's full budget, resumable after a crash.

- :mod:`.input`: read and validate the JSONL input, shards;
- :mod:`.output`: the output file, which is also the checkpoint a rerun resumes from;
- :mod:`.plan`: this run's prompts: the input (shard) minus what the checkpoint answered;
- :mod:`.runner`: prompts in flight through one client, waits, Ctrl-C;
- :mod:`.pacing`: how many in flight: the budget's minute times the observed latency;
- :mod:`.tally` and :mod:`.progress`: counts, and how they are shown;
- :mod:`.command`: the command itself, from options to exit code.
"""

from __future__ import annotations

from .command import BatchOptions, run_batch
from .input import InputError, Shard
from .output import OutputError
from .runner import RequestOptions

__all__ = [
    "BatchOptions",
    "InputError",
    "OutputError",
    "RequestOptions",
    "Shard",
    "run_batch",
]
