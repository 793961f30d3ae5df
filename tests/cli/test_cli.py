"""The `almanac` command line end to end, with the real bundled embedding model."""

from __future__ import annotations

import json

import pytest
from almanac.cli.main import main

pytestmark = pytest.mark.slow


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "notes"
    root.mkdir()
    (root / "espresso.md").write_text("# Espresso\n\nGrind fine and extract for 25 seconds at 9 bar.\n")
    (root / "sourdough.txt").write_text("Feed the sourdough starter with equal flour and water daily.\n")
    (root / "broken.docx").write_bytes(b"not a zip file")
    return root


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_index_status_search(capsys, folder, tmp_path):
    code, out, _ = run(capsys, "index", str(folder))
    assert code == 0 and "2 indexed" in out and "1 failed" in out

    code, out, _ = run(capsys, "status", "--json")
    status = json.loads(out)
    assert code == 0
    assert (status["documents"], status["failed"]) == (2, 1)
    assert status["chunks"] == status["embedded"] == 2
    assert status["failures"][0]["path"].endswith("broken.docx") and status["failures"][0]["reason"]
    assert status["embedding_model"] == "all-MiniLM-L6-v2"

    code, out, _ = run(capsys, "search", "how long to pull an espresso shot", "--json", "--k", "2")
    result = json.loads(out)
    assert result["hits"][0]["path"].endswith("espresso.md")
    assert {"path", "page", "score", "keyword_rank", "vector_rank", "text"} <= set(result["hits"][0])
    assert set(result["timings_ms"]) >= {"embed query", "vector search", "keyword search", "fusion"}

    queries = tmp_path / "q.txt"
    queries.write_text("sourdough starter\n\nespresso grind\n")
    code, out, _ = run(capsys, "search", "--queries", str(queries), "--json", "--mode", "keyword")
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["query"] for line in lines] == ["sourdough starter", "espresso grind"]
    assert lines[0]["hits"][0]["path"].endswith("sourdough.txt")

    # second run over the unchanged folder does nothing
    code, out, _ = run(capsys, "index")
    assert "0 indexed" in out and "3 unchanged" in out  # the failed file is not retried until it changes


def test_clear_errors_not_tracebacks(capsys, tmp_path):
    code, _, err = run(capsys, "index", str(tmp_path / "nope"))
    assert code == 1 and err.startswith("almanac: Folder not found")
    code, _, err = run(capsys, "search", "   ")
    assert code == 1 and "Type a question" in err
    code, _, err = run(capsys, "remove", str(tmp_path))
    assert code == 1 and "not in the library" in err


def test_data_dir_option(capsys, folder, tmp_path):
    other = tmp_path / "elsewhere"
    code, _, _ = run(capsys, "--data-dir", str(other), "add", str(folder))
    assert code == 0 and (other / "almanac.db").exists()
