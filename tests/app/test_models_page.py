"""The Models window: a real download from a local server, progress, "use this model", remove."""

from __future__ import annotations

import hashlib
import shutil

import pytest
from almanac.app.models_page import ModelsDialog
from almanac.core import catalog
from almanac.core.llm import bundled_llm_path
from almanac.core.settings import Settings
from servers import file_server


@pytest.fixture
def served(tmp_path, monkeypatch):
    folder = tmp_path / "served"
    folder.mkdir()
    shutil.copyfile(bundled_llm_path(), folder / "tiny.gguf")
    data = (folder / "tiny.gguf").read_bytes()
    model = catalog.CatalogModel(
        id="tiny", name="Tiny test model", params="135M", file="tiny.gguf", url="https://example.invalid/tiny.gguf",
        size_bytes=len(data), approx_size_mb=len(data) // 1_000_000, ram_gb=0.5, context_length=2048,
        license="Apache-2.0", sha256=hashlib.sha256(data).hexdigest(), md5=None, verified=True, source="test",
    )
    with file_server(folder) as (url, state):
        monkeypatch.setenv(catalog.MIRROR_ENV, url)
        yield model, state


def test_download_verify_use_and_remove(qtbot, served):
    model, _ = served
    dialog = ModelsDialog(Settings(), models=[model])
    qtbot.addWidget(dialog)
    assert dialog.table.item(0, 5).text() == "in use"  # the bundled model, by default
    dialog.select("tiny")
    assert dialog.download_button.isEnabled() and not dialog.use_button.isEnabled()

    with qtbot.waitSignal(dialog.download_finished, timeout=60_000) as finished:
        dialog.start_download()
        assert dialog.pause_button.isEnabled()
    assert finished.args == ["tiny"]
    assert dialog.table.item(1, 5).text() == "installed"
    assert "verified" in dialog.progress_label.text()

    with qtbot.waitSignal(dialog.use_model) as used:
        dialog.use_selected()
    assert used.args == [str(catalog.models_dir() / "tiny.gguf")]
    assert dialog.table.item(1, 5).text() == "in use"

    with qtbot.waitSignal(dialog.use_model) as back:  # removing the model in use falls back to the bundled one
        dialog.remove_selected()
    assert back.args == [""]
    assert not (catalog.models_dir() / "tiny.gguf").exists()
    dialog.reject()


def test_closing_mid_download_keeps_the_partial_file_and_a_new_window_resumes_it(qtbot, served):
    model, state = served
    state.cut_after = [1_000_000]  # the first connection drops: the download waits to retry
    dialog = ModelsDialog(Settings(), models=[model])
    qtbot.addWidget(dialog)
    dialog.select("tiny")
    dialog.start_download()
    qtbot.waitUntil(lambda: catalog.pending_bytes(model) > 0, timeout=30_000)
    dialog.toggle_pause()
    assert dialog.pause_button.text() == "Continue"
    dialog.reject()  # closing the window stops the download and its thread
    assert dialog._jobs is None
    partial = catalog.pending_bytes(model)
    assert 0 < partial < model.size_bytes

    again = ModelsDialog(Settings(), models=[model])
    qtbot.addWidget(again)
    again.select("tiny")
    assert again.download_button.text() == "Resume Download"
    assert again.table.item(1, 5).text().endswith("MB downloaded")
    with qtbot.waitSignal(again.download_finished, timeout=60_000):
        again.start_download()
    assert state.ranges[-1] == f"bytes={partial}-"
    again.reject()


def test_answer_servers_tab_saves_tests_and_removes_a_server(qtbot, monkeypatch):
    from almanac.core import keys
    from servers import chat_server, free_port, stream_reply

    monkeypatch.setenv("ALMANAC_NO_KEYRING", "1")
    dialog = ModelsDialog(Settings(), models=[])
    qtbot.addWidget(dialog)
    page = dialog.servers
    with chat_server(stream_reply(["OK"])) as (url, requests):
        page.name.setText("office")
        page.base_url.setText(url)
        page.model.setText("big")
        page.api_key.setText("sk-office")
        with qtbot.waitSignal(dialog.servers_changed) as changed:
            page.save()
        assert changed.args == [[{"name": "office", "base_url": url, "model": "big"}]]
        assert keys.get_api_key("office") == "sk-office" and page.table.item(0, 3).text() == "stored"
        with qtbot.waitSignal(page.tested, timeout=20_000) as tested:
            page.test()
        assert "office answered" in tested.args[0] and "'OK'" in tested.args[0]
        assert requests[0]["_authorization"] == "Bearer sk-office"

    page.base_url.setText(f"http://127.0.0.1:{free_port()}/v1")
    with qtbot.waitSignal(page.tested, timeout=20_000) as tested:
        page.test()
    assert tested.args[0].startswith("No answer (connection)")
    with qtbot.waitSignal(dialog.servers_changed) as changed:
        page.remove()
    assert changed.args == [[]] and keys.get_api_key("office") is None
    dialog.reject()
