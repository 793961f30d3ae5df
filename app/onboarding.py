"""The first run: what the main area shows while the library is empty, the sample documents, and the
questions suggested for them.

The samples ship as package data (`almanac.resources`, see resources/samples/SOURCES.md). They are copied
into the data folder before they are added, so the library never points into the installation.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from almanac.core import paths
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

SAMPLES_FOLDER = "Sample documents"
# Each is answered from a different sample file; with the bundled models (`almanac ask`) each answer
# states the fact and cites [1], the passage it comes from.
SAMPLE_QUESTIONS = (
    "Where was the first Fresnel lens installed?",
    "Who worked out the meaning of the waggle dance?",
    "When did Lincoln give the Gettysburg Address?",
)


def bundled_samples() -> list[Path]:
    """The shipped sample documents (not SOURCES.md, which is about them)."""
    folder = resources.files("almanac.resources") / "samples"
    return sorted(Path(str(f)) for f in folder.iterdir() if f.is_file() and f.name != "SOURCES.md")


def samples_folder() -> Path:
    return paths.data_dir() / SAMPLES_FOLDER


def install_samples() -> Path:
    """Copy the sample documents into the data folder (a few KB; files already there are replaced)."""
    dest = samples_folder()
    dest.mkdir(parents=True, exist_ok=True)
    for file in bundled_samples():
        shutil.copyfile(file, dest / file.name)
    return dest


def _muted(label: QLabel) -> QLabel:
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


class WelcomeView(QWidget):
    """Shown instead of the chat while the library has no folders."""

    addFolderRequested = Signal()
    samplesRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcome")
        title = QLabel("Your library is empty", self)
        title.setObjectName("welcomeTitle")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        title.setFont(font)
        text = QLabel(
            "Almanac answers questions about your own files — notes, papers, manuals, code — and shows"
            " the passages each answer comes from. Add a folder and Almanac indexes it on this computer;"
            " nothing leaves it.",
            self,
        )
        text.setWordWrap(True)
        self.add_button = QPushButton("Add a Folder…", self)
        self.add_button.setDefault(True)
        self.add_button.clicked.connect(self.addFolderRequested)
        self.samples_button = QPushButton("Try It with Sample Documents", self)
        self.samples_button.setToolTip("Four short public-domain texts; they index in a few seconds")
        self.samples_button.clicked.connect(self.samplesRequested)
        drop = _muted(QLabel("or drop a folder anywhere on this window", self))

        buttons = QVBoxLayout()  # stacked, so a narrow middle column still fits them
        for button in (self.add_button, self.samples_button):
            button.setMinimumWidth(200)
            buttons.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        # The words sit in a column of bounded width, centred; labels are added without an alignment flag,
        # which would stop word-wrapped text from getting the height it needs.
        card = QWidget(self)
        card.setMaximumWidth(480)
        column = QVBoxLayout(card)
        title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        text.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        drop.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        drop.setWordWrap(True)
        column.addWidget(title)
        column.addWidget(text)
        column.addSpacing(12)
        column.addLayout(buttons)
        column.addWidget(drop)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(card, 3)
        row.addStretch(1)
        outer = QVBoxLayout(self)
        outer.addStretch(2)
        outer.addLayout(row)
        outer.addStretch(3)


class SuggestionBar(QWidget):
    """Questions to try, above an empty chat while the sample documents are in the library."""

    questionChosen = Signal(str)
    dismissed = Signal()

    def __init__(self, questions: tuple[str, ...] = SAMPLE_QUESTIONS, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("suggestions")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 6)
        header = QHBoxLayout()
        header.addWidget(QLabel("<b>Try asking about the sample documents:</b>", self), 1)
        close = QPushButton("Hide", self)
        close.setFlat(True)
        close.setToolTip("Hide these suggestions")
        close.clicked.connect(self.dismissed)
        header.addWidget(close)
        layout.addLayout(header)
        self.buttons: list[QPushButton] = []
        for question in questions:
            button = QPushButton(question, self)
            button.setStyleSheet("text-align: left; padding: 4px 8px;")
            button.setToolTip(question)
            button.setMinimumWidth(120)  # a narrow column clips the text instead of widening the window
            button.clicked.connect(lambda _checked=False, q=question: self.questionChosen.emit(q))
            layout.addWidget(button)
            self.buttons.append(button)
