"""`almanac ask` end to end: real embedder, real SQLite + FTS5 + sqlite-vec, the real bundled GGUF."""

from __future__ import annotations

import json

import pytest
from almanac.cli.main import main

pytestmark = pytest.mark.slow


def test_ask_cites_the_right_file(capsys, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "freedonia.md").write_text("# Freedonia\n\nThe capital of Freedonia is Blorbville.\n")
    (folder / "espresso.txt").write_text("Espresso is brewed at 9 bar for about 25 seconds.\n")
    (folder / "bikes.txt").write_text("Oil a bicycle chain every few hundred kilometres.\n")
    assert main(["index", str(folder)]) == 0
    capsys.readouterr()

    assert main(["ask", "What is the capital of Freedonia?", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["sources"][0]["path"].endswith("freedonia.md")
    assert "Blorbville" in answer["answer"]
    assert answer["cited"], answer["answer"]
    cited_paths = {answer["sources"][n - 1]["path"] for n in answer["cited"]}
    assert any(p.endswith("freedonia.md") for p in cited_paths)
    assert answer["stopped"] in ("stop", "length")
    stages = set(answer["timings_ms"])
    assert {"embed query", "vector search", "keyword search", "fusion", "prompt", "first token"} <= stages
    assert answer["prompt_tokens"] > 0 and answer["answer_tokens"] > 0 and answer["tokens_per_s"] > 0


def test_ask_says_so_when_nothing_matches(capsys, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "espresso.txt").write_text("Espresso is brewed at 9 bar for about 25 seconds.\n")
    assert main(["index", str(folder)]) == 0
    capsys.readouterr()
    assert main(["ask", "Who won the 1954 Eurovision chess marathon?", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["stopped"] == "no context" and answer["sources"] == []
    assert "model load" not in answer["timings_ms"]
