"""Evidence packing: the budget is kept, the best sentence goes first, source numbers never change."""

from __future__ import annotations

from almanac.core.evidence import label, pack_evidence, render_evidence
from almanac.core.hits import Hit
from almanac.core.quick_answer import rank_sentences


def hit(n: int, text: str, *, page: int | None = None, title: str = "") -> Hit:
    return Hit(n, n, f"/docs/f{n}.pdf", title, page, "", text, text[:40], [], 1.0 / n, keyword_rank=n)


def words(text: str) -> int:
    return len(text.split())


FILLER = " ".join(f"Unrelated sentence number {i} talks about gardening." for i in range(20))
ANSWER = hit(3, FILLER + " The capital of Freedonia is Blorbville. " + FILLER, page=7, title="Atlas")
OTHER = hit(1, "Freedonia has a long coast. Its capital city hosts the parliament. " + FILLER)


def test_budget_is_respected_and_numbers_are_kept():
    sources = [(1, OTHER), (3, ANSWER)]
    ranked = rank_sentences("What is the capital of Freedonia?", sources, None)
    for budget in (15, 40, 120):
        blocks = pack_evidence(ranked, sources, words, budget)
        text = render_evidence(blocks)
        assert words(text) <= budget
        assert {b.n for b in blocks} <= {1, 3}
        for b in blocks:
            assert b.render().startswith(f"[{b.n}] (")
    blocks = pack_evidence(ranked, sources, words, 120)
    assert blocks[0].n == 3 and "Blorbville" in blocks[0].body()  # the best evidence first
    assert blocks[0].render().startswith("[3] (Atlas, page 7) ")


def test_neighbouring_sentences_come_along_when_they_fit():
    sources = [(3, ANSWER)]
    ranked = rank_sentences("capital Freedonia Blorbville", sources, None)
    tight = pack_evidence(ranked, sources, words, 12, neighbours=1)
    roomy = pack_evidence(ranked, sources, words, 200, neighbours=1)
    assert tight[0].body() == "The capital of Freedonia is Blorbville."
    assert "gardening. The capital of Freedonia is Blorbville. Unrelated" in roomy[0].body()


def test_gaps_between_spans_are_marked():
    text = "Alpha beta gamma here. Filler words fill this. More filler sits here. Alpha beta delta there."
    sources = [(1, hit(1, text))]
    ranked = rank_sentences("alpha beta", sources, None)
    blocks = pack_evidence(ranked, sources, words, 100, neighbours=0)
    assert blocks[0].body() == "Alpha beta gamma here. … Alpha beta delta there."


def test_nothing_fits_gives_no_evidence():
    sources = [(1, OTHER)]
    ranked = rank_sentences("capital", sources, None)
    assert pack_evidence(ranked, sources, words, 3) == []
    assert pack_evidence([], sources, words, 100) == []


def test_label_prefers_a_short_title_then_the_file_name():
    assert label(hit(1, "x", page=2, title="Atlas")) == "Atlas, page 2"
    assert label(hit(1, "x")) == "f1.pdf"
    assert label(hit(1, "x", title="T" * 80)) == "f1.pdf"
