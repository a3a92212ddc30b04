"""Noticing a model stuck in a loop while it streams.

A small model at low temperature can fall into a cycle: the same sentence, paragraph
or token again and again until ``max_tokens``. :class:`RepetitionGuard` watches the
streamed pieces (one a token, about) and says when the tail of the answer is one
block repeated verbatim, many times over.

Only exact repetition counts, and a lot of it: the last :data:`MIN_SPAN` pieces or
more (and at least :data:`MIN_REPEATS` whole copies of the block) must be strictly
periodic. Code with many similar lines is never periodic (names and numbers change
from line to line). Legitimate exact repetition is data: a literal matrix of zeros,
a table of dashes. Its block is made of a handful of distinct pieces, so a block of
fewer than :data:`MIN_VARIETY` distinct pieces must repeat over
:data:`LOW_VARIETY_SPAN` pieces before it counts. The price of that caution is that a
loop runs a few hundred tokens before it is stopped, which still saves most of an
answer's cap (a looping story answer of SmolLM2 was stopped at token 835 of 2,048).

Cost: O(1) time per piece (memory: the answer's pieces and one dict entry each).
Candidate periods come from the last occurrence of the last :data:`NGRAM` pieces (a
dict lookup); each candidate keeps a counter of how many pieces in a row have equalled
the piece one period earlier, and at most :data:`MAX_CANDIDATES` candidates are
followed. A block's variety is counted once, when its candidate first gets that far.
"""

from __future__ import annotations

from collections.abc import Hashable

#: The shortest periodic tail that counts as a loop (pieces, about tokens).
MIN_SPAN = 600
#: The fewest whole copies of the repeated block (matters for long blocks).
MIN_REPEATS = 3
#: The longest block looked for (pieces).
MAX_PERIOD = 400
#: Blocks with fewer distinct pieces than this look like data (zeros, dashes)...
MIN_VARIETY = 8
#: ...and must repeat over this many pieces to count as a loop.
LOW_VARIETY_SPAN = 1500
#: Pieces in the n-gram whose earlier occurrence proposes a period.
NGRAM = 4
#: Candidate periods followed at once.
MAX_CANDIDATES = 8


class RepetitionGuard:
    """Feed each streamed piece to :meth:`feed`; it returns True once the answer is
    looping (and stays True).

    Args:
        min_span: the shortest periodic tail that counts as a loop.
        min_repeats: the fewest whole copies of the block it must hold.
        max_period: the longest block considered.
    """

    def __init__(
        self,
        *,
        min_span: int = MIN_SPAN,
        min_repeats: int = MIN_REPEATS,
        max_period: int = MAX_PERIOD,
    ) -> None:
        self.min_span = min_span
        self.min_repeats = min_repeats
        self.max_period = max_period
        self._pieces: list[Hashable] = []
        self._last_seen: dict[tuple[Hashable, ...], int] = {}
        # period -> pieces in a row equal to the piece one period earlier
        self._runs: dict[int, int] = {}
        # period -> the span it must reach (known once it reaches MIN_SPAN)
        self._needed: dict[int, int] = {}
        self.looping = False
        #: The block's length (pieces) once a loop is found.
        self.period: int | None = None

    def feed(self, piece: Hashable) -> bool:
        if self.looping:
            return True
        pieces = self._pieces
        i = len(pieces)
        pieces.append(piece)
        runs = self._runs
        for period in list(runs):
            if pieces[i - period] == piece:
                runs[period] += 1
            else:
                del runs[period]
                self._needed.pop(period, None)
        if i + 1 >= NGRAM:
            gram = tuple(pieces[i + 1 - NGRAM :])
            seen = self._last_seen.get(gram)
            self._last_seen[gram] = i
            if seen is not None and i - seen <= self.max_period and (i - seen) not in runs:
                self._follow(i - seen)
        for period, run in runs.items():
            span = run + period  # the last `span` pieces repeat with this period
            if (
                span >= self.min_span
                and span >= self.min_repeats * period
                and span >= self._span_needed(period)
            ):
                self.looping = True
                self.period = period
                return True
        return False

    def _span_needed(self, period: int) -> int:
        """Computed once per candidate, when its span first reaches ``min_span``."""
        needed = self._needed.get(period)
        if needed is None:
            block = self._pieces[-period:]
            needed = self.min_span if len(set(block)) >= MIN_VARIETY else LOW_VARIETY_SPAN
            self._needed[period] = needed
        return needed

    def _follow(self, period: int) -> None:
        runs = self._runs
        if len(runs) >= MAX_CANDIDATES:
            # Drop the candidate with the shortest run: a real period, once found, only
            # grows, so it outlives the noise.
            weakest = min(runs, key=runs.__getitem__)
            del runs[weakest]
            self._needed.pop(weakest, None)
        runs[period] = NGRAM  # the n-gram itself already repeats
