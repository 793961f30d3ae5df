"""The Models window: the catalog, what is installed, download progress, and "use this model".

Downloads run on their own job thread (never the GUI thread) with a CancelToken the buttons pause, resume
and cancel. Progress comes back through the job thread's one signal, at most ten times a second. The
dialog never changes settings itself: "Use this model" emits `use_model(path)` and the window applies it.
"""

from __future__ import annotations

import time

from almanac.core import catalog
from almanac.core.cancel import CancelToken
from almanac.core.download import Progress
from almanac.core.errors import AlmanacError, Cancelled
from almanac.core.settings import Settings
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from . import messages
from .jobs import JobThread
from .servers_page import ServersPage
from .tables import row_table

COLUMNS = ("Model", "Size", "Memory", "Context", "Licence", "Status")
PROGRESS_EVERY_S = 0.1


class ModelsDialog(QDialog):
    use_model = Signal(str)  # a GGUF path, or "" for the bundled model
    download_finished = Signal(str)  # model id, after it was verified and installed
    download_stopped = Signal(str)  # a plain reason: paused for later, cancelled, or the error
    servers_changed = Signal(list)  # the new answer_servers setting (the Answer Servers tab)

    def __init__(
        self,
        settings: Settings,
        parent: QWidget | None = None,
        *,
        models: list[catalog.CatalogModel] | None = None,  # None: the shipped catalog
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(860, 460)
        self._current = settings.llm_path
        self._catalog = models if models is not None else catalog.load_catalog()
        self._installed: dict[str, catalog.Installed] = {}
        self._token: CancelToken | None = None
        self._downloading: str | None = None
        self._discard_on_stop = False
        self._last_progress = 0.0
        self._jobs: JobThread | None = None  # one per download, so no thread outlives it
        app = QApplication.instance()
        if app is not None:  # quitting with a download running must not destroy a running thread
            app.aboutToQuit.connect(self._stop_download)

        self.table = row_table(COLUMNS, self)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.details = QLabel(self)
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        self.progress = QProgressBar(self)
        self.progress.hide()
        self.progress_label = QLabel(self)

        self.download_button = QPushButton("Download", self)
        self.pause_button = QPushButton("Pause", self)
        self.cancel_button = QPushButton("Cancel Download", self)
        self.use_button = QPushButton("Use This Model", self)
        self.remove_button = QPushButton("Remove", self)
        close = QPushButton("Close", self)
        buttons = QHBoxLayout()
        for b in (
            self.download_button, self.pause_button, self.cancel_button, self.use_button, self.remove_button
        ):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)

        models_tab = QWidget(self)
        layout = QVBoxLayout(models_tab)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.details)
        layout.addWidget(self.progress)
        layout.addWidget(self.progress_label)
        layout.addLayout(buttons)
        self.servers = ServersPage(settings.answer_servers, self)
        self.servers.servers_changed.connect(self.servers_changed)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(models_tab, "Models")
        self.tabs.addTab(self.servers, "Answer Servers")
        outer = QVBoxLayout(self)
        outer.addWidget(self.tabs, 1)

        self.table.itemSelectionChanged.connect(self._update)
        self.download_button.clicked.connect(self.start_download)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button.clicked.connect(self.cancel_download)
        self.use_button.clicked.connect(self.use_selected)
        self.remove_button.clicked.connect(self.remove_selected)
        close.clicked.connect(self.close)
        self.refresh()
        self.table.selectRow(0)

    # -- table ---------------------------------------------------------------------------------------

    def _ids(self) -> list[str]:
        return [catalog.BUNDLED_ID] + [m.id for m in self._catalog]

    def _model(self, model_id: str) -> catalog.CatalogModel | None:
        return next((m for m in self._catalog if m.id == model_id), None)

    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self._ids()[rows[0].row()] if rows else None

    def select(self, model_id: str) -> None:
        self.table.selectRow(self._ids().index(model_id))

    def refresh(self) -> None:
        self._installed = catalog.installed_models()
        self.table.setRowCount(len(self._ids()))
        for row, model_id in enumerate(self._ids()):
            m = self._model(model_id)
            if m is None:
                size = self._installed[model_id].size_bytes if model_id in self._installed else 0
                cells = ("SmolLM2 135M Instruct (bundled, works offline)", f"{size / 1e6:.0f} MB", "0.5 GB",
                         "8192", "Apache-2.0")
            else:
                size = f"{m.size_bytes / 1e6:,.0f} MB" if m.size_bytes else f"~{m.approx_size_mb:,} MB"
                cells = (m.name, size, f"{m.ram_gb:g} GB", str(m.context_length), m.license)
            for col, text in enumerate((*cells, self._status(model_id))):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self._update()

    def _status(self, model_id: str) -> str:
        entry = self._installed.get(model_id)
        bundled_in_use = not self._current and model_id == catalog.BUNDLED_ID
        in_use = entry is not None and (entry.path == self._current or bundled_in_use)
        if in_use:
            return "in use"
        if entry is not None:
            return "installed"
        if model_id == self._downloading:
            return "paused" if self._token is not None and self._token.paused else "downloading"
        m = self._model(model_id)
        partial = catalog.pending_bytes(m) if m else 0
        return f"{partial / 1e6:,.0f} MB downloaded" if partial else "available"

    def _update(self) -> None:
        model_id = self.selected_id()
        m = self._model(model_id) if model_id else None
        busy = self._downloading is not None
        installed = model_id in self._installed
        lines = []
        if m is not None:
            lines.append(m.source if m.verified else f"Not fully verified: {m.source}.")
            warning = catalog.ram_warning(m)
            if warning:
                lines.append("⚠ " + warning)
        elif model_id:
            lines.append("Ships with Almanac; needs no download and no network.")
        self.details.setText("\n".join(lines))
        partial = catalog.pending_bytes(m) if m else 0
        self.download_button.setText("Resume Download" if partial and not busy else "Download")
        self.download_button.setEnabled(m is not None and not installed and not busy)
        self.pause_button.setEnabled(busy)
        self.pause_button.setText("Continue" if self._token is not None and self._token.paused else "Pause")
        self.cancel_button.setEnabled(busy or bool(partial))
        self.use_button.setEnabled(installed and self._status(model_id or "") != "in use")
        self.remove_button.setEnabled(installed and model_id != catalog.BUNDLED_ID)

    # -- downloading ---------------------------------------------------------------------------------

    def start_download(self) -> None:
        model_id = self.selected_id()
        m = self._model(model_id) if model_id else None
        if m is None or self._downloading is not None:
            return
        token = CancelToken()
        self._token, self._downloading, self._discard_on_stop = token, m.id, False
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.show()
        self.progress_label.setText(f"Connecting to download {m.name}…")
        self._jobs = jobs = JobThread("model-download", on_error=self._failed, parent=self)
        jobs.submit(
            lambda: catalog.install(m, progress=lambda p: self._progress_from_thread(jobs, p), cancel=token),
            success=self._installed_ok,
            failure=self._failed,
        )
        self.refresh()

    def _progress_from_thread(self, jobs: JobThread, p: Progress) -> None:
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY_S or p.done == p.total:
            self._last_progress = now
            jobs.post(self._show_progress, p)

    def _show_progress(self, p: Progress) -> None:
        if p.total:
            self.progress.setValue(int(1000 * p.done / p.total))
        eta = f" · {_duration(p.eta_s)} left" if p.eta_s is not None else ""
        total = f" of {p.total / 1e6:,.0f} MB" if p.total else " MB"
        self.progress_label.setText(
            f"{p.done / 1e6:,.0f}{total} · {p.bytes_per_s / 1e6:.1f} MB/s{eta}"
            + (f" (resumed at {p.resumed_from / 1e6:,.0f} MB)" if p.resumed_from else "")
        )

    def toggle_pause(self) -> None:
        if self._token is None:
            return
        if self._token.paused:
            self._token.resume()
        else:
            self._token.pause()
            self.progress_label.setText(self.progress_label.text() + " · paused")
        self.refresh()

    def cancel_download(self) -> None:
        """Stops a running download and deletes what it had; with none running, deletes a partial file."""
        if self._token is not None:
            self._discard_on_stop = True
            self._token.cancel()
            return
        model_id = self.selected_id()
        m = self._model(model_id) if model_id else None
        if m is not None:
            catalog.remove(m.id)
        self.refresh()

    def _installed_ok(self, entry: catalog.Installed) -> None:
        self._end_download()
        self.progress_label.setText(f"Downloaded and verified ({entry.checked_against}).")
        self.refresh()
        self.download_finished.emit(entry.id)

    def _failed(self, err: BaseException) -> None:
        model_id = self._downloading
        self._end_download()
        if isinstance(err, Cancelled):
            if self._discard_on_stop and model_id:
                catalog.remove(model_id)
                reason = "Download cancelled."
            else:
                reason = "Download stopped; it resumes from here next time."
        elif isinstance(err, AlmanacError):
            reason = str(err)
        else:
            self.refresh()
            raise err  # a bug: the job thread's error path reports it
        self.progress_label.setText(reason)
        self.refresh()
        self.download_stopped.emit(reason)

    def _end_download(self) -> None:
        self._token, self._downloading = None, None
        self.progress.hide()
        if self._jobs is not None:
            self._jobs.stop()  # its job has ended: this only joins the idle thread
            self._jobs = None

    def _stop_download(self) -> None:
        """Stop a running download, keeping its partial file for a later resume, and end its thread."""
        if self._token is not None:
            self._token.cancel()
        if self._jobs is not None:
            self._jobs.stop()
            self._jobs = None

    # -- using and removing --------------------------------------------------------------------------

    def use_selected(self) -> None:
        model_id = self.selected_id()
        entry = self._installed.get(model_id or "")
        if entry is None:
            return
        path = "" if model_id == catalog.BUNDLED_ID else entry.path
        m = self._model(model_id or "")
        warning = catalog.ram_warning(m) if m else None
        if warning:
            messages.ask(
                self, "Use This Model?", warning, yes="Use It Anyway", on_yes=lambda: self._use(path),
                no="Keep the Current Model",
            )
            return
        self._use(path)

    def _use(self, path: str) -> None:
        self._current = path
        self.use_model.emit(path)
        self.refresh()

    def remove_selected(self) -> None:
        model_id = self.selected_id()
        if not model_id or model_id == catalog.BUNDLED_ID or model_id not in self._installed:
            return
        if self._installed[model_id].path == self._current:
            self._use("")  # back to the bundled model before its file goes
        catalog.remove(model_id)
        self.refresh()

    def done(self, result: int) -> None:  # closing: stop a download, keeping its partial file for later
        self._stop_download()
        self.servers.shutdown()
        super().done(result)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
