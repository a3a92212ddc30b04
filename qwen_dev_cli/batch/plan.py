"""What one run of a batch has to do: this shard of the input, minus what the
checkpoint shows answered, after checking the checkpoint belongs to this input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from .input import InputError, InputFile, Prompt, Shard, read_prompts, scan
from .output import Checkpoint, OutputError


@dataclass(frozen=True)
class Plan:
    """The prompts of one run.

    Args:
        source: the input.
        shard: this machine's shard, or ``None`` for all of it.
        checkpoint: what earlier runs answered.
        total: prompts in the input (in the shard).
        skipped: of those, answered ``ok`` before: not sent again.
        retrying: of those, failed before: sent again.
        signature: the input's size, modification time and inode when it was validated.
    """

    source: InputFile
    shard: Shard | None
    checkpoint: Checkpoint
    total: int
    skipped: int
    retrying: int
    signature: tuple[int, int, int]

    @property
    def todo(self) -> int:
        return self.total - self.skipped

    def prompts(self) -> Iterator[Prompt]:
        """The prompts to send, read lazily in input order.

        Raises:
            InputError: the input changed since it was validated.
        """
        if _signature(self.source) != self.signature:
            raise InputError(f"{self.source.name} changed since it was validated; run again")
        return read_prompts(self.source, self._wanted)

    def _wanted(self, prompt: Prompt) -> bool:
        if self.shard is not None and prompt.id not in self.shard:
            return False
        answered = self.checkpoint.results.get(prompt.id)
        return answered is None or not answered.ok


def make_plan(
    source: InputFile, checkpoint: Checkpoint, shard: Shard | None, *, output_name: str
) -> Plan:
    """Validate the input and match it with the checkpoint.

    Raises:
        InputError: the input is invalid (every problem listed with its line).
        OutputError: the output holds ids this input (shard) does not have, or ids
            answered for a different prompt: it belongs to another input.
    """
    signature = _signature(source)
    total = skipped = retrying = 0
    matched: set[str] = set()
    changed: list[str] = []

    def visit(prompt: Prompt) -> None:
        nonlocal total, skipped, retrying
        if shard is not None and prompt.id not in shard:
            return
        total += 1
        answered = checkpoint.results.get(prompt.id)
        if answered is None:
            return
        matched.add(prompt.id)
        if answered.digest != prompt.digest:
            changed.append(f"{json.dumps(prompt.id)} ({source.name}:{prompt.line})")
        elif answered.ok:
            skipped += 1
        else:
            retrying += 1

    scan(source, visit)
    where = source.name if shard is None else f"shard {shard} of {source.name}"
    strangers = [i for i in checkpoint.results if i not in matched]
    if strangers:
        raise OutputError(
            f"{output_name} holds results for {_count(strangers, 'id')} not in {where} "
            f"(e.g. {json.dumps(strangers[0])}): it belongs to another input. "
            "Choose another output file (or delete it to start over)."
        )
    if changed:
        raise OutputError(
            f"{output_name} answered {_count(changed, 'id')} for a different prompt than "
            f"{source.name} now asks (e.g. {changed[0]}): it belongs to another input. "
            "Choose another output file (or delete it to start over)."
        )
    return Plan(source, shard, checkpoint, total, skipped, retrying, signature)


def _signature(source: InputFile) -> tuple[int, int, int]:
    found = source.path.stat()
    return found.st_size, found.st_mtime_ns, found.st_ino


def _count(items: list[str], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"
