"""`almanac models list|download|use|remove` against a local mirror serving the bundled GGUF."""

from __future__ import annotations

import hashlib
import json
import shutil

from almanac.cli.main import main
from almanac.core import catalog
from almanac.core.llm import bundled_llm_path
from almanac.core.settings import Settings
from servers import file_server


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_json_has_the_bundled_default_and_the_catalog(capsys):
    code, out, _ = run(capsys, "models", "list", "--json")
    rows = json.loads(out)["models"]
    assert code == 0 and rows[0]["id"] == "bundled" and rows[0]["in_use"] and rows[0]["status"] == "installed"
    ids = {r["id"] for r in rows}
    assert {"qwen2.5-0.5b", "llama-3.2-1b", "smollm2-1.7b", "phi-3.5-mini"} <= ids
    assert all(r["status"] == "available" for r in rows[1:])


def test_download_use_and_remove_through_a_mirror(capsys, tmp_path, monkeypatch):
    folder = tmp_path / "mirror"
    folder.mkdir()
    model = catalog.find(catalog.load_catalog(), "smollm2-360m")  # no published size or checksum
    shutil.copyfile(bundled_llm_path(), folder / model.file)
    sha = hashlib.sha256((folder / model.file).read_bytes()).hexdigest()
    with file_server(folder) as (url, _):
        monkeypatch.setenv(catalog.MIRROR_ENV, url)
        code, out, _ = run(capsys, "models", "download", "smollm2-360m", "--use", "--json")
    result = json.loads(out)
    assert code == 0 and result["sha256"] == sha and result["checked_against"] == "unverified"
    assert Settings.load().llm_path == result["path"]

    code, out, _ = run(capsys, "models", "list")
    assert "* smollm2-360m" in out

    code, out, _ = run(capsys, "models", "remove", "smollm2-360m")
    assert code == 0 and "Removed" in out
    assert Settings.load().llm_path == ""  # back to the bundled model


def test_use_refuses_a_model_that_is_not_downloaded(capsys):
    code, _, err = run(capsys, "models", "use", "qwen2.5-0.5b")
    assert code == 1 and "almanac models download qwen2.5-0.5b" in err


def test_key_is_read_from_stdin_and_stored_privately(capsys, monkeypatch):
    import io
    import stat

    from almanac.core import keys

    monkeypatch.setenv("ALMANAC_NO_KEYRING", "1")
    monkeypatch.setattr("sys.stdin", io.StringIO("sk-from-stdin\n"))
    code, out, _ = run(capsys, "models", "key", "office")
    assert code == 0 and "readable only by you" in out and "sk-from-stdin" not in out
    assert keys.get_api_key("office") == "sk-from-stdin"
    assert stat.S_IMODE(keys.keys_path().stat().st_mode) == 0o600
    code, _, _ = run(capsys, "models", "key", "office", "--delete")
    assert code == 0 and keys.get_api_key("office") is None


def test_cache_command_reports_hits_and_clears(capsys):
    import numpy as np
    from almanac.core import paths
    from almanac.core.answer_cache import AnswerCache

    cache = AnswerCache(paths.db_path().with_name("answer_cache.db"))
    v = np.ones(4, dtype=np.float32) / 2
    cache.put("What is the gate code?", v, "cfg", {"answer": "4512"}, [(1, "h")], answer_ms=1500.0)
    assert cache.lookup("what is the gate code", v, "cfg", lambda ids: dict.fromkeys(ids, "h")) is not None
    assert cache.lookup("Where is the shed?", -v, "cfg", lambda ids: {}) is None
    cache.close()
    code, out, _ = run(capsys, "cache", "--json")
    assert code == 0 and json.loads(out) == {
        "entries": 1, "lookups": 2, "exact_hits": 1, "semantic_hits": 0, "hit_rate": 0.5, "saved_ms": 1500.0
    }
    code, out, _ = run(capsys, "cache", "--clear")
    assert "Cached answers: 0" in out
