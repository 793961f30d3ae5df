"""`almanac ask` end to end: real embedder, real SQLite + FTS5 + sqlite-vec, the real bundled GGUF."""

from __future__ import annotations

import json

import pytest
from almanac.cli.main import main

pytestmark = pytest.mark.slow

NOTES = {
    "freedonia.md": "# Freedonia\n\nFreedonia is a small country on the coast. The capital of Freedonia is"
    " Blorbville. Its main export is timber.\n",
    "espresso.txt": "Espresso is brewed at 9 bar for about 25 seconds. A double shot uses 18 grams of coffee.\n",
    "bikes.txt": "Oil a bicycle chain every few hundred kilometres. Check the tyre pressure weekly.\n",
}


@pytest.fixture
def notes(tmp_path, capsys):
    folder = tmp_path / "notes"
    folder.mkdir()
    for name, text in NOTES.items():
        (folder / name).write_text(text)
    assert main(["index", str(folder)]) == 0
    capsys.readouterr()
    return folder


def ask_json(capsys, question: str) -> dict:
    assert main(["ask", question, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_ask_states_the_fact_and_cites_the_right_file(capsys, notes):
    answer = ask_json(capsys, "What is the capital of Freedonia?")
    paths = {s["n"]: s["path"] for s in answer["sources"]}
    quick = answer["quick_answer"]
    assert quick is not None and "Blorbville" in quick["text"] and paths[quick["n"]].endswith("freedonia.md")
    assert "Blorbville" in answer["answer"]
    assert answer["cited"], answer["answer"]
    assert any(paths[n].endswith("freedonia.md") for n in answer["cited"])
    assert "Question:" not in answer["answer"]
    assert answer["stopped"] in ("stop", "length")
    stages = set(answer["timings_ms"])
    assert {"embed query", "vector search", "keyword search", "fusion", "quick answer", "prompt"} <= stages
    assert {"first token", "generation"} <= stages
    assert 0 < answer["prompt_tokens"] <= 400
    assert answer["answer_tokens"] > 0 and answer["tokens_per_s"] > 0


def test_an_off_topic_question_is_declined_without_the_model(capsys, notes):
    answer = ask_json(capsys, "Who won the 1954 Eurovision chess marathon?")
    assert answer["stopped"] == "declined", answer
    assert answer["answer"].startswith("I couldn't find this in your files.")
    assert answer["quick_answer"] is None and answer["cited"] == []
    assert answer["sources"]  # the closest passages, to look at instead
    assert not {"model load", "prompt", "first token"} & set(answer["timings_ms"])


def test_the_terminal_shows_the_quick_answer_first(capsys, notes):
    assert main(["ask", "How long is espresso brewed?"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Quick answer: Espresso is brewed at 9 bar for about 25 seconds.")
    assert "Sources:" in out and "espresso.txt" in out
