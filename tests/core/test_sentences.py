"""Sentence spans: PDF line wraps joined, Markdown blocks kept apart, abbreviations not split."""

from __future__ import annotations

from almanac.core.sentences import split_sentences


def texts(text: str, **kwargs) -> list[str]:
    return [span.text(text) for span in split_sentences(text, **kwargs)]


def test_sentences_end_at_stops_before_a_capital_or_digit():
    text = "HTTPX enforces timeouts. The default is 5 seconds! Is that long? 10 seconds is longer."
    assert texts(text) == [
        "HTTPX enforces timeouts.",
        "The default is 5 seconds!",
        "Is that long?",
        "10 seconds is longer.",
    ]


def test_spans_point_into_the_original_text():
    text = "  First sentence here.\n\nSecond sentence  here.  "
    spans = split_sentences(text)
    assert [text[s.start : s.end] for s in spans] == ["First sentence here.", "Second sentence  here."]


def test_wrapped_lines_are_joined_and_blank_lines_split():
    text = "The proof-of-work chain is\nthe longest chain and it\nproves the sequence.\n\nA new paragraph starts here."
    assert texts(text) == [
        "The proof-of-work chain is the longest chain and it proves the sequence.",
        "A new paragraph starts here.",
    ]


def test_markdown_headings_list_items_and_code_are_units_of_their_own():
    text = "# Timeout settings\nHTTPX sets a timeout by default\n- connect timeout is five\n- read timeout is five\n```\nhttpx.get(url, timeout=None)\n```"
    assert texts(text, min_words=1) == [
        "# Timeout settings",
        "HTTPX sets a timeout by default",
        "- connect timeout is five",
        "- read timeout is five",
        "```",
        "httpx.get(url, timeout=None)",
        "```",
    ]


def test_abbreviations_and_initials_do_not_end_a_sentence():
    text = "Use a client, e.g. Client() for pooling. The paper by S. Nakamoto is short."
    assert texts(text) == ["Use a client, e.g. Client() for pooling.", "The paper by S. Nakamoto is short."]


def test_short_fragments_are_dropped():
    assert texts("Page 3\n\nThe answer is in this sentence.") == ["The answer is in this sentence."]
    assert texts("") == []
