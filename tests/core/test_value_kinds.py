"""What kind of value a question asks for, and whether a text holds one (core.value_kinds)."""

from __future__ import annotations

import pytest
from almanac.core.hits import Hit
from almanac.core.quick_answer import rank_sentences
from almanac.core.value_kinds import asked_kind, counted_words, holds_kind, kind_first, sentence_window


def hit(n: int, text: str, distance: float | None) -> Hit:
    return Hit(n, n, f"/d/{n}.txt", "", None, "", text, text, [], 1.0, vector_distance=distance)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many datasets make up the BEIR benchmark?", "number"),
        ("How old is Emma when the novel opens?", "measure"),  # "when" inside is not "when ...?"
        ("How long does the retry wait?", "measure"),
        ("How big is the vocabulary?", "number"),  # "30,000 tokens" or "30,000": a count
        ("How long ago was it released?", "number"),
        ("Which TCP port do nodes listen on?", "number"),
        ("What is the default maximum number of connections in a pool?", "number"),
        ("What learning rate was the model trained with?", "number"),
        ("When was bash 4.3 first made available?", "date"),
        ("In which year is the novel set?", "date"),
        ("When does the flight to Lisbon leave?", None),  # a time or a day, not a date
        ("When did the ferry first sail?", "date"),
        ("When is version 3.0 going to be released?", "date"),  # a release to come
        ("When will the new edition be out?", "date"),
        ("When is the rent due?", None),  # a day
        ("When is the next train expected?", None),  # a time
        ("What is the cover price of the book?", "money"),
        ("How much does the course cost?", "money"),
        ("How much does the printed manual from the publisher cost?", "money"),
        ("How much memory does the index cost?", "number"),
        ("How much memory does the server have?", "number"),
        ("What keeps the rate of new blocks steady?", None),  # the rate is not what it asks for
        ("What exit status does bash give when a command cannot run?", None),
        ("Who was the original author of Bash?", None),
        ("Which HTTPX release dropped Python 3.7?", "version"),
        ("Under which licence is the dataset released?", "licence"),
        ("At which conference was the paper presented?", "venue"),
        ("Which environment variable turns debug logging on?", "variable"),
        ("What is the profiler's overhead in percent?", "percentage"),
        ("What is the default encoding of response.text?", "default"),
        ("What is the default chunk size of iter_bytes?", "number"),  # a size is a number
        ("What is the default maximum number of connections in a pool?", "number"),  # a number first
        ("What's the oldest GCC version that can build it?", "version"),  # "What's" asks as "What is"
        ("What is the version of bash it covers?", "version"),
        ("Which version control system holds the sources?", None),  # a system, not a version
        ("What is Mr. Knightley's income a year?", "money"),
        # the first question word decides: a way or a reason is no value, whatever the clauses name
        ("With the -jp profiler, how do I see how much time each line takes?", None),
        ("How can I tell how many jobs are running?", None),
        ("Why does the first request take 5 seconds?", None),
        ("Do the docs say how many retries HTTPX makes?", "number"),  # yes/no, asking for the number
        ("How is the default timeout set?", "default"),
        ("Since I don't know how to set it, what is the default port?", "default"),  # the asking clause decides
        ("How does one set the default timeout, and what is it?", "default"),
    ],
)
def test_the_kind_of_value_a_question_asks_for(question, kind):
    assert asked_kind(question) == kind


def test_a_value_of_the_kind_asked_for():
    q = "How many GPUs was the model trained on?"
    assert holds_kind("number", "Training ran on 8 GPUs.", q)
    assert holds_kind("number", "It ran on eight 32GB GPUs.", q)
    assert holds_kind("number", "The reader is seventeen.", "How old is the reader?")
    assert holds_kind("number", "He lived about a mile from Highbury.", "How far from Highbury does he live?")
    assert not holds_kind("number", "He came a second time.", "How far from Highbury does he live?")
    # Numbers that name or label count nothing, nor does the question's own number.
    assert not holds_kind("number", "It speaks HTTP/2 and uses l2 regularisation.", q)
    assert not holds_kind("number", "Think Python, 2nd Edition, Version 2.2.20", q)
    assert not holds_kind("number", "Paperback, ISBN: 0-9541617-7-7", q)
    assert not holds_kind("number", "3) Each node works on its block.\n17\n", q)
    assert not holds_kind("number", "The 21 million passages were split.", "How long did the 21 million take?")
    assert holds_kind("date", "Bash-4.3 was released on 26 February 2014.", "When was bash 4.3 released?")
    assert not holds_kind("date", "Bash-4.0 contained the following new features:", "When was bash 6.0 released?")
    assert holds_kind("money", "Suppose the cover price of a book is $24.95.", "What is the cover price?")
    assert not holds_kind("money", "Version 2.2.20, 2nd Edition", "What is the cover price?")


def test_a_measure_has_its_unit():
    q = "How long did training take?"
    for text in ("It took 8.8 hours.", "Peak memory was 512GB.", "It ran for twenty-one days.", "About a mile."):
        assert holds_kind("measure", text, q)
    assert holds_kind("measure", "The timeout defaults to 30.", q)  # a default is said bare
    # A number on the subject that is no measure of anything, nor a year, nor the question's own.
    for text in ("Set retries=1 on the transport.", "bash-1.14 was a smaller shell.", "See Table 3.",
                 "Python 3's release notes", "In 2019 the days grew shorter.", "Three of us went."):
        assert not holds_kind("measure", text, q)
    assert not holds_kind("measure", "Start your 30-day trial.", "How long does the 30-day trial last?")
    often = "How often is it checked?"
    assert holds_kind("measure", "It is checked twice a day.", often) and holds_kind("measure", "Every night.", often)
    assert not holds_kind("measure", "Every file is checked.", often)
    # An age is said bare too, but "one of the few", "3.5" or a year is no age.
    age = "How old is Harriet?"
    for text in ("Harriet was a girl of seventeen.", "She was twenty-one, and rich.", "He is 40.", "She was twenty one."):
        assert holds_kind("measure", text, age)
    for text in ("He was one of the few people who saw it.", "The ratio is 3.5 in the end.", "The year was 1815.",
                 "In the summer of 1816.", "A team of 5 went."):
        assert not holds_kind("measure", text, age)


def test_a_named_type_has_its_form():
    assert holds_kind("version", "Python 3.7 support was dropped in 0.25.0.", "Which release dropped Python 3.7?")
    assert not holds_kind("version", "It speaks HTTP/1.1 and dropped Python 3.7.", "Which release dropped Python 3.7?")
    assert holds_kind("licence", "The code is released under the BSD licence.", "Under which licence is it out?")
    assert not holds_kind("licence", "The dataset is on GitHub for anyone to use.", "Under which licence is it out?")
    assert holds_kind("venue", "In Proceedings of the Summer USENIX Conference.", "At which conference was it shown?")
    assert holds_kind("variable", "Set HTTPX_LOG_LEVEL to debug.", "Which environment variable gives logs?")
    assert holds_kind("variable", "If TMOUT is set, bash exits.", "Which variable makes bash exit?")
    assert not holds_kind("variable", "Set the proxy with the environment.", "Which environment variable gives logs?")
    assert holds_kind("percentage", "It costs about 5% of the run time.", "What is the overhead in percent?")
    assert not holds_kind("percentage", "It has a very low overhead, sampling every 10 ms.", "What is the overhead in percent?")
    assert holds_kind("default", "- `timeout`, seconds. (Default 5.0)", "What is the default timeout?")
    assert not holds_kind("default", "`iter_bytes([chunk_size])` yields bytes.", "What is the default chunk size?")


def test_a_count_stands_next_to_what_it_counts():
    assert counted_words("How many training examples does MS MARCO have?") == {"training", "example"}
    assert counted_words("How many layers does the encoder have?") == {"layer"}
    assert counted_words("How many copies of the manual were sold?") == {"copy"}
    assert counted_words("How long did it take?") == set()
    assert counted_words("How many kinds of event hooks does a client support?") == {"event", "hook"}
    q = "How many layers does the encoder have?"
    assert holds_kind("number", "It has 16 heads and 12 layers.", q)
    assert holds_kind("number", "- `max_layers`, how deep the stack is. (Default 12)", q)
    # Numbers in the passage that count something else do not answer it.
    far = "It was trained for 3 days on a large corpus of English news and web text, and stacks self-attention layers."
    assert not holds_kind("number", far, q)
    assert not holds_kind("number", "It has 16 attention heads.", q)
    assert not holds_kind("number", "See Exercise 4.3 and Exercise 12.", "How many exercises does the book have?")
    assert holds_kind("number", "It has 16 attention heads.", "How much memory does it need?")  # no count asked


def test_the_quick_answer_prefers_a_value_of_the_kind_asked():
    text = "Mr. Knightley lived near Highbury, away from Donwell.\nMr. Knightley lived about a mile from Highbury.\n"
    hits = [hit(1, text, 0.3)]
    q = "How far from Highbury does Mr. Knightley live?"
    ranked = rank_sentences(q, [(1, hits[0])], None)
    assert ranked[0].text.startswith("Mr. Knightley lived near")  # as many of its words, and first
    assert kind_first(ranked, hits, q)[0].text == "Mr. Knightley lived about a mile from Highbury."
    assert kind_first(ranked, hits, "Where does Mr. Knightley live?") == ranked  # no kind asked: as ranked
    # Only a sentence that could be a quick answer by itself is moved up, or there would be none.
    assert kind_first(ranked, hits, q, min_score=ranked[0].score + 0.01) == ranked


def test_the_window_takes_what_belongs_to_the_sentence():
    text = "- `max_connections`, maximum number of connections, or `None`.\n(Default 100)\n- `next` item.\n"
    start, end = 0, text.index(".\n") + 1
    assert sentence_window(text, start, end).endswith("(Default 100)")  # a short fragment line
    text = "- `max_keepalive`, number of keep-alive connections, or `None` to always\nallow. (Defaults 20)\nMore."
    assert sentence_window(text, 0, text.index("always") + 6).endswith("(Defaults 20)")  # cut at the break
    text = "A whole sentence.\nThe next line is a sentence of its own with 99 in it.\n"
    assert sentence_window(text, 0, 17) == "A whole sentence."
