"""Evidence for the model: the best sentences of the sources, with a little context, within a token budget.

Prompt length is the latency on a CPU (llama.cpp evaluates the bundled model's prompt at ~215 tokens/s on
2 cores), and a 135M model answers better from three relevant sentences than from five whole chunks. Each
piece of evidence keeps the number of the source passage it came from, so a citation [n] still points at
the passage listed as source n.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath

from .hits import Hit
from .quick_answer import ScoredSentence
from .sentences import Span, split_sentences

MAX_SENTENCES = 5  # best sentences taken (before context); more rarely helps a small model
# A sentence scoring below this share of the best one is not evidence, just noise.
RELATIVE_FLOOR = 0.6
GAP = " … "  # between non-adjacent spans of one passage


@dataclass
class EvidenceBlock:
    n: int
    hit: Hit
    spans: list[Span] = field(default_factory=list)  # sorted, merged when they touch
    first_score: float = 0.0  # score of the best sentence in it: blocks are shown best first

    def body(self) -> str:
        parts: list[str] = []
        prev_end = None
        for span in self.spans:
            if prev_end is not None:
                between = self.hit.text[prev_end : span.start]
                parts.append(" " if not between.strip() else GAP)
            parts.append(span.text(self.hit.text))
            prev_end = span.end
        return "".join(parts).strip()

    def render(self) -> str:
        return f"[{self.n}] ({label(self.hit)}) {self.body()}"


def label(hit: Hit) -> str:
    name = hit.title.strip() if hit.title and len(hit.title) <= 60 else PurePath(hit.path).name or hit.path
    return f"{name}, page {hit.page}" if hit.page is not None else name


def _add(spans: list[Span], new: Span) -> list[Span]:
    """`spans` with `new` added, kept sorted; overlapping or touching spans merged."""
    out: list[Span] = []
    for span in sorted([*spans, new], key=lambda s: s.start):
        if out and span.start <= out[-1].end + 1:
            out[-1] = Span(out[-1].start, max(out[-1].end, span.end))
        else:
            out.append(span)
    return out


def pack_evidence(
    ranked: list[ScoredSentence],
    sources: Sequence[tuple[int, Hit]],
    count_tokens: Callable[[str], int],
    budget: int,
    *,
    neighbours: int = 1,
    max_sentences: int = MAX_SENTENCES,
) -> list[EvidenceBlock]:
    """Blocks of evidence, best first, whose rendered text (joined by blank lines) fits in `budget` tokens.

    Each chosen sentence brings up to `neighbours` sentences either side from its passage while they fit
    (a pronoun's referent, the number a sentence leads up to). Sentences are taken best first; one that does
    not fit is skipped and a later, shorter one may still go in.
    """
    hits = dict(sources)
    sentence_spans = {n: split_sentences(hit.text) for n, hit in sources}
    blocks: dict[int, EvidenceBlock] = {}
    if not ranked:
        return []
    floor = ranked[0].score * RELATIVE_FLOOR

    def cost(candidate: dict[int, EvidenceBlock]) -> int:
        text = "\n\n".join(b.render() for b in candidate.values() if b.spans)
        return count_tokens(text) if text else 0

    taken = 0
    for sentence in ranked:
        if taken >= max_sentences or (taken and sentence.score < floor):
            break
        n = sentence.n
        block = blocks.get(n) or EvidenceBlock(n, hits[n], first_score=sentence.score)
        if any(s.start <= sentence.span.start and sentence.span.end <= s.end for s in block.spans):
            taken += 1  # already in, as another sentence's context
            continue
        spans = _add(block.spans, sentence.span)
        trial = {**blocks, n: EvidenceBlock(n, block.hit, spans, block.first_score)}
        if cost(trial) > budget:
            continue
        blocks = trial
        taken += 1
        order = sentence_spans[n]
        at = next((i for i, s in enumerate(order) if s == sentence.span), None)
        if at is None:
            continue
        for i in [*range(at + 1, at + 1 + neighbours), *range(at - 1, at - 1 - neighbours, -1)]:
            if 0 <= i < len(order):
                current = blocks[n]
                wider = {
                    **blocks,
                    n: EvidenceBlock(n, current.hit, _add(current.spans, order[i]), current.first_score),
                }
                if cost(wider) <= budget:
                    blocks = wider
    return sorted((b for b in blocks.values() if b.spans), key=lambda b: -b.first_score)


def render_evidence(blocks: list[EvidenceBlock]) -> str:
    return "\n\n".join(b.render() for b in blocks)
