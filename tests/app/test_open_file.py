"""'Open File' opens a document to read; a script, launcher or executable is shown in its folder, never run.
No test launches anything: the desktop opener is replaced by a recorder."""

from __future__ import annotations

import stat

import pytest
from almanac.app.open_file import open_for_viewing, runs_when_opened
from almanac.app.sources_panel import SourcesPanel
from app_helpers import make_answer
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices

SCRIPTS = [
    "setup.bat",
    "build.cmd",
    "install.sh",
    "app.desktop",
    "run.command",
    "tool.ps1",
    "Fix.BAT",
    "x.js",
]


@pytest.fixture
def opened(monkeypatch):
    urls: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: urls.append(url) or True)
    return urls


def test_scripts_and_executables_open_their_folder(tmp_path, opened):
    folder = tmp_path / "project"
    folder.mkdir()
    for name in SCRIPTS:
        (folder / name).write_text("rm -rf ~\n")
    plain = folder / "deploy"  # no suffix, but the executable bit: a file manager would run it
    plain.write_text("#!/bin/sh\nrm -rf ~\n")
    plain.chmod(plain.stat().st_mode | stat.S_IXUSR)
    for path in [*(folder / n for n in SCRIPTS), plain]:
        assert runs_when_opened(path), path.name
        assert open_for_viewing(str(path))
    assert [u.toLocalFile() for u in opened] == [str(folder)] * (len(SCRIPTS) + 1)


def test_documents_open_themselves(tmp_path, opened):
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n")
    paper = tmp_path / "paper.pdf"
    paper.write_bytes(b"%PDF-1.4")
    for path in (notes, paper):
        assert not runs_when_opened(path)
        open_for_viewing(str(path))
    assert [u.toLocalFile() for u in opened] == [str(notes), str(paper)]


def test_a_script_inside_an_app_bundle_shows_the_folder_around_it(tmp_path, opened):
    bundle = tmp_path / "Tool.app"
    bundle.mkdir()
    (bundle / "launch.sh").write_text("echo\n")
    open_for_viewing(str(bundle / "launch.sh"))
    assert [u.toLocalFile() for u in opened] == [str(tmp_path)]


def test_sources_panel_open_button_never_runs_a_script(qtbot, tmp_path, opened):
    script = tmp_path / "garden.sh"
    script.write_text("echo water\n")
    answer = make_answer()
    answer.sources[0].hit.path = str(script)
    panel = SourcesPanel()
    qtbot.addWidget(panel)
    panel.set_answer(answer)
    qtbot.mouseClick(panel.open_button, Qt.MouseButton.LeftButton)
    assert [u.toLocalFile() for u in opened] == [str(tmp_path)]


def test_a_hit_for_an_undecodable_file_name_still_previews(tmp_path):
    from almanac.app.document_text import document_text
    from almanac.core import store
    from almanac.core.extractors import ExtractionWorker

    raw = tmp_path.as_posix().encode() + b"/caf\xe9.md"
    try:
        with open(raw, "wb") as fh:
            fh.write(b"# Menu\n\nCroissants every morning.\n")
    except OSError as err:
        pytest.skip(f"this file system refuses non-UTF-8 names: {err}")
    stored = store.path_to_db(raw.decode("utf-8", "surrogateescape"))  # what a search hit carries
    with ExtractionWorker(timeout_s=60) as worker:
        assert "Croissants every morning." in (document_text(stored, worker) or "")
