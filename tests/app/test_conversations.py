"""Conversations survive restarts, with each answer's sources and timings."""

from __future__ import annotations

import json

from almanac.app.conversations import (
    ConversationStore,
    Turn,
    answer_from_json,
    answer_to_json,
    new_conversation,
    title_from,
)
from almanac.core.quick_answer import QuickAnswer
from app_helpers import make_answer


def test_answer_round_trips_through_json():
    answer = make_answer()
    again = answer_from_json(json.loads(json.dumps(answer_to_json(answer))))
    assert again == answer


def test_a_two_sentence_quick_answer_round_trips():
    answer = make_answer()
    second = QuickAnswer("Basil wants less.", 2, 0, 17, 0.6)
    answer.quick_answer = QuickAnswer("The tomato plants need watering every morning.", 1, 0, 46, 0.7, second)
    again = answer_from_json(json.loads(json.dumps(answer_to_json(answer))))
    assert again.quick_answer == answer.quick_answer and again.quick_answer.also == second


def test_answer_from_json_ignores_unknown_fields():
    data = answer_to_json(make_answer())
    data["from_a_newer_version"] = 1
    data["sources"][0]["hit"]["new_hit_field"] = "x"
    assert answer_from_json(data).sources[0].hit.path == "/docs/garden.md"


def test_store_saves_lists_loads_and_deletes(tmp_path):
    store = ConversationStore(tmp_path / "c")
    first, second = new_conversation(), new_conversation()
    first.title = "Garden"
    first.turns = [Turn("How often?", make_answer()), Turn("And basil?", None, error="Stopped")]
    convs = [first, second]
    store.save(first, convs)
    store.save(second, convs)

    listed = ConversationStore(tmp_path / "c").list()
    assert [c.id for c in listed] == [second.id, first.id]  # most recently updated first
    assert not listed[1].loaded
    loaded = store.load(listed[1])
    assert loaded.title == "Garden"
    assert loaded.turns[0].answer == make_answer()
    assert loaded.turns[1].error == "Stopped"

    store.delete(first, listed)
    assert [c.id for c in store.list()] == [second.id]


def test_a_damaged_index_is_rebuilt_from_the_files(tmp_path):
    store = ConversationStore(tmp_path / "c")
    conv = new_conversation()
    conv.title = "Kept"
    store.save(conv, [conv])
    (tmp_path / "c" / "index.json").write_text("{not json", encoding="utf-8")
    assert [c.title for c in store.list()] == ["Kept"]


def test_a_damaged_conversation_loads_empty(tmp_path):
    store = ConversationStore(tmp_path / "c")
    conv = new_conversation()
    store.save(conv, [conv])
    (tmp_path / "c" / f"{conv.id}.json").write_text("garbage", encoding="utf-8")
    listed = store.list()
    assert store.load(listed[0]).turns == []


def test_titles_are_one_short_line():
    assert title_from("  what   is\nthis? ") == "what is this?"
    assert len(title_from("word " * 40)) <= 48
