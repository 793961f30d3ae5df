"""Settings: the models, the context and threads they run with, how many sources, the answer's length and
time limits, chunking, ignore rules, reading scans (OCR).

The dialog edits a copy of `Settings`; the window decides what a change needs (reloading the model,
reopening the library, offering a re-index) when the dialog is accepted.
"""

from __future__ import annotations

import dataclasses

from almanac.core.settings import RANGES, Settings
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

# Changing these changes what is in the index, so the window offers to re-index.
REINDEX_FIELDS = ("embedding_model", "chunk_tokens", "chunk_overlap")
# Changing these changes which files are indexed; a sync applies them (OCR on, or a higher page limit: the
# PDFs whose scanned pages were left out are read again, core.indexer.Indexer.rereads).
SYNC_FIELDS = ("ignore_patterns", "max_file_mb", "ocr", "ocr_max_pages")
# Changing these needs the language model reloaded.
LLM_FIELDS = ("llm_path", "context_size", "threads", "gpu_layers")


def changed(old: Settings, new: Settings, names: tuple[str, ...]) -> list[str]:
    return [n for n in names if getattr(old, n) != getattr(new, n)]


class _PathField(QWidget):
    def __init__(self, placeholder: str, pick: str, parent: QWidget) -> None:
        super().__init__(parent)
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText(placeholder)
        self.edit.setClearButtonEnabled(True)
        self.button = QPushButton("Choose…", self)
        self._pick = pick
        self.button.clicked.connect(self._choose)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.button)

    def _choose(self) -> None:
        if self._pick == "gguf":
            path, _ = QFileDialog.getOpenFileName(
                self, "Choose a Language Model", self.edit.text(), "GGUF models (*.gguf);;All files (*)"
            )
        else:
            path = QFileDialog.getExistingDirectory(
                self, "Choose a sentence-transformers Model Folder", self.edit.text()
            )
        if path:
            self.edit.setText(path)


def _spin(minimum: int, maximum: int, step: int = 1, special: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(minimum, maximum)
    box.setSingleStep(step)
    if special:
        box.setSpecialValueText(special)  # shown for the minimum
    return box


def _bounds(name: str) -> tuple[int, int]:
    low, high = RANGES[name]  # declared once, in core.settings, where loading checks them too
    return int(low), int(high)


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Almanac Settings")
        self.setObjectName("settingsDialog")
        self._original = settings

        self.llm_path = _PathField("Bundled SmolLM2-135M-Instruct", "gguf", self)
        self.embedding_model = _PathField("Bundled all-MiniLM-L6-v2", "folder", self)
        self.context_size = _spin(512, 131_072, 512)
        self.threads = _spin(0, 256, special="Automatic")
        self.gpu_layers = _spin(0, 999, special="None (CPU only)")
        self.top_k = _spin(1, 50)
        self.max_answer_tokens = _spin(*_bounds("max_answer_tokens"), 32)
        self.max_answer_tokens.setSuffix(" tokens")
        self.max_answer_tokens.setToolTip("The answer stops at this many tokens (about ¾ of a word each)")
        self.answer_timeout_s = _spin(*_bounds("answer_timeout_s"), 5)
        self.answer_timeout_s.setSuffix(" s")
        self.answer_timeout_s.setToolTip("An answer still being written after this long is stopped")
        self.chunk_tokens = _spin(32, 2048, 16)
        self.ignore_patterns = QPlainTextEdit(self)
        self.ignore_patterns.setPlaceholderText("One pattern per line, as in .gitignore")
        self.ignore_patterns.setMinimumHeight(140)
        self.ignore_patterns.setToolTip(
            "Secrets are always left out, whatever these rules say: keys and certificates, .env files,"
            " credentials and tokens, password-manager files and exports, browser profiles, and any file"
            " that holds a private key."
        )

        # Scans: OCR of PDF pages without a text layer and of image files (core/extractors/ocr.py).
        self.ocr = QCheckBox("Read text in scanned pages and images (OCR)", self)
        self.ocr.setToolTip(
            "PDF pages without text and PNG, JPEG, TIFF and WebP files are read by OCR on this computer;"
            " each scan is read once and remembered. Off: images are left out and scanned pages skipped."
        )
        self.ocr_max_pages = _spin(*_bounds("ocr_max_pages"))
        self.ocr_max_pages.setPrefix("at most ")
        self.ocr_max_pages.setSuffix(" pages per file")
        self.ocr_max_pages.setToolTip("A longer scan's later pages are left out, and the file says so")
        self.ocr.toggled.connect(self.ocr_max_pages.setEnabled)

        # History: the local query log (docs/observability.md).
        self.log_queries = QCheckBox("Record questions and searches (on this computer only)", self)
        self.log_question_text = QCheckBox("Keep the words of each question", self)
        self.log_question_text.setToolTip("Off: timings and scores are kept, the questions are not")
        self.log_retention_days = _spin(*_bounds("log_retention_days"), special="Forever")
        self.log_retention_days.setSuffix(" days")
        self.clear_history = QPushButton("Clear History", self)
        self.clear_history.setToolTip("Delete every recorded question and its feedback now")
        self.clear_history.clicked.connect(self._confirm_clear)
        self.history_cleared = False  # the user asked to clear it; the window applies it with the settings
        self.log_queries.toggled.connect(self.log_question_text.setEnabled)
        self.log_queries.toggled.connect(self.log_retention_days.setEnabled)
        history = QHBoxLayout()
        history.addWidget(self.log_retention_days)
        history.addWidget(self.clear_history)
        history.addStretch(1)

        form = QFormLayout()
        form.addRow("Language model file:", self.llm_path)
        form.addRow("Embedding model folder:", self.embedding_model)
        form.addRow("Context size (tokens):", self.context_size)
        form.addRow("CPU threads:", self.threads)
        form.addRow("GPU layers:", self.gpu_layers)
        form.addRow("Sources per answer:", self.top_k)
        form.addRow("Answer length limit:", self.max_answer_tokens)
        form.addRow("Answer time limit:", self.answer_timeout_s)
        form.addRow("Chunk size (tokens):", self.chunk_tokens)
        form.addRow("Ignore rules:", self.ignore_patterns)
        form.addRow("Scans:", self.ocr)
        form.addRow("", self.ocr_max_pages)
        form.addRow("History:", self.log_queries)
        form.addRow("", self.log_question_text)
        form.addRow("Keep history for:", history)
        note = QLabel(
            "Changing the embedding model or the chunk size means re-indexing; Almanac will offer to do"
            " it. Files matching an ignore rule are left out of the index. A change to reading scans applies"
            " to the scans read from then on.",
            self,
        )
        note.setWordWrap(True)
        note.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.buttons)
        self.resize(560, self.sizeHint().height())
        self.load(settings)

    def load(self, s: Settings) -> None:
        self.llm_path.edit.setText(s.llm_path)
        self.embedding_model.edit.setText(s.embedding_model)
        self.context_size.setValue(s.context_size)
        self.threads.setValue(s.threads)
        self.gpu_layers.setValue(s.gpu_layers)
        self.top_k.setValue(s.top_k)
        self.max_answer_tokens.setValue(s.max_answer_tokens)
        self.answer_timeout_s.setValue(round(s.answer_timeout_s))
        self.chunk_tokens.setValue(s.chunk_tokens)
        self.ignore_patterns.setPlainText("\n".join(s.ignore_patterns))
        self.ocr.setChecked(s.ocr)
        self.ocr_max_pages.setValue(s.ocr_max_pages)
        self.ocr_max_pages.setEnabled(s.ocr)
        self.log_queries.setChecked(s.log_queries)
        self.log_question_text.setChecked(s.log_question_text)
        self.log_question_text.setEnabled(s.log_queries)
        self.log_retention_days.setValue(s.log_retention_days)
        self.log_retention_days.setEnabled(s.log_queries)

    def values(self) -> Settings:
        """The settings as edited (the fields this dialog does not show keep their values)."""
        patterns = [line.strip() for line in self.ignore_patterns.toPlainText().splitlines()]
        chunk_tokens = self.chunk_tokens.value()
        return dataclasses.replace(
            self._original,
            llm_path=self.llm_path.edit.text().strip(),
            embedding_model=self.embedding_model.edit.text().strip(),
            context_size=self.context_size.value(),
            threads=self.threads.value(),
            gpu_layers=self.gpu_layers.value(),
            top_k=self.top_k.value(),
            max_answer_tokens=self.max_answer_tokens.value(),
            answer_timeout_s=float(self.answer_timeout_s.value()),
            chunk_tokens=chunk_tokens,
            # The overlap must stay below the chunk size; keep the user's unless it no longer fits.
            chunk_overlap=min(self._original.chunk_overlap, chunk_tokens // 4),
            ignore_patterns=[p for p in patterns if p],
            ocr=self.ocr.isChecked(),
            ocr_max_pages=self.ocr_max_pages.value(),
            log_queries=self.log_queries.isChecked(),
            log_question_text=self.log_question_text.isChecked(),
            log_retention_days=self.log_retention_days.value(),
        )

    def _confirm_clear(self) -> None:
        self.history_cleared = True
        self.clear_history.setEnabled(False)
        self.clear_history.setText("History will be cleared")
