"""The main window: conversations and library on the left, the chat in the middle (a welcome with folder and
sample-document buttons while the library is empty), and on the right the sources and timings of the
selected answer. It wires widgets to the two background controllers and keeps the conversations; it does
no slow work itself.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from almanac.core import paths
from almanac.core.embedding import Embedder, SentenceTransformerEmbedder
from almanac.core.errors import AlmanacError
from almanac.core.indexer import SyncReport
from almanac.core.settings import Settings
from almanac.core.watch import AppliedReport
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QMainWindow,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from . import messages
from .ask_controller import AskController, LLMFactory, default_llm
from .chat_session import ChatSession
from .chat_view import ChatView
from .conversation_list import ConversationList
from .document_text import DocumentTexts
from .drift_banner import DriftBanner
from .index_controller import IndexController, LibraryState, WatcherFactory, default_watcher
from .insights_controller import InsightsController
from .insights_view import InsightsDialog
from .library_panel import LibraryPanel
from .models_page import ModelsDialog
from .onboarding import SuggestionBar, WelcomeView, install_samples, samples_folder
from .progress_line import IndexProgressLine
from .scan_preview import ScanPages
from .settings_dialog import LLM_FIELDS, REINDEX_FIELDS, SYNC_FIELDS, SettingsDialog, changed
from .shortcuts import ShortcutsDialog
from .sources_panel import SourcesPanel
from .status_bar import StatusBar
from .timing_panel import TimingPanel
from .tray import IndexTray
from .ui_state import UiState

log = logging.getLogger(__name__)

INDEX_FIELDS = (*REINDEX_FIELDS, *SYNC_FIELDS, "extract_timeout_s")


def default_embedder(settings: Settings) -> Embedder:
    return SentenceTransformerEmbedder(settings.embedding_model)


class MainWindow(QMainWindow):
    def __init__(
        self,
        *,
        settings: Settings | None = None,
        embedder_factory: Callable[[Settings], Embedder] = default_embedder,
        watcher_factory: WatcherFactory | None = default_watcher,
        llm_factory: LLMFactory = default_llm,
        db_path: Path | None = None,
        sync_on_start: bool = True,
        load_model: bool = True,
    ) -> None:
        super().__init__()
        self.setWindowTitle("Almanac")
        self.setObjectName("mainWindow")
        self.setAcceptDrops(True)
        self.settings = settings or Settings.load()
        self.reporter = messages.ErrorReporter(self, open_settings=self.open_settings)
        db_path = db_path or paths.db_path()
        self.index = IndexController(
            db_path=db_path,
            settings=self.settings,
            embedder_factory=embedder_factory,
            watcher_factory=watcher_factory,
            on_error=self.reporter.report,
            parent=self,
        )
        self.asker = AskController(
            db_path=db_path,
            settings=self.settings,
            llm_factory=llm_factory,
            on_error=self.reporter.report,
            parent=self,
        )
        self.documents = DocumentTexts(on_error=self.reporter.report, parent=self)
        self.scans = ScanPages(on_error=self.reporter.report, parent=self)
        self.insights = InsightsController(
            db_path=db_path, settings=self.settings, on_error=self.reporter.report, parent=self
        )
        self._insights_dialog: InsightsDialog | None = None
        self._settings_dialog: SettingsDialog | None = None
        self._shut_down = False
        self._library_folders: list[str] | None = None  # as last reported; None before the library opens

        self._build_widgets()
        self.chats = ChatSession(
            self,
            chat=self.chat,
            chat_list=self.conversation_list,
            sources=self.sources,
            timings=self.timings,
            asker=self.asker,
            insights=self.insights,
            status=self.status,
            report=self.reporter.report,
        )
        self._build_actions()
        self._connect()
        self._ui = UiState()
        self._ui.restore(self, self._splitters(), self.sidebar)
        self.chats.load(self._ui.conversation)
        if self._ui.flag("watch_paused"):
            self.index.set_watch_paused(True)  # before the watcher starts: it starts paused

        self.index.open(sync=sync_on_start)
        if load_model:
            self.asker.load_model()
        else:
            self.status.set_model_state("idle", "Model loads with the first question")

    # -- construction ----------------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.conversation_list = ConversationList(self)
        self.library_panel = LibraryPanel(self)
        self.sidebar = QTabWidget(self)
        self.sidebar.setObjectName("sidebar")
        self.sidebar.addTab(self.conversation_list, "Chats")
        self.sidebar.addTab(self.library_panel, "Library")

        self.chat = ChatView(self)
        self.progress_line = IndexProgressLine(self)
        self.suggestions = SuggestionBar(parent=self)
        self.suggestions.hide()
        chat_column = QWidget(self)
        column = QVBoxLayout(chat_column)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        self.drift_banner = DriftBanner(self)
        for widget in (self.drift_banner, self.progress_line, self.suggestions):
            column.addWidget(widget)
        column.addWidget(self.chat, 1)
        self.welcome = WelcomeView(self)
        # The main area: the welcome while the library has no folders, else the chat.
        self.center = QStackedWidget(self)
        self.center.setObjectName("center")
        self.center.addWidget(chat_column)
        self.center.addWidget(self.welcome)
        self.chat_column = chat_column
        self.tray = IndexTray(self)
        self.sources = SourcesPanel(self)
        self.sources.text_loader = self.documents.request
        self.sources.scan_loader = self.scans.request
        self.timings = TimingPanel(self)
        self.right_splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.right_splitter.setObjectName("rightSplitter")
        self.right_splitter.addWidget(self.sources)
        self.right_splitter.addWidget(self.timings)
        self.right_splitter.setStretchFactor(0, 1)
        self.right_splitter.setSizes([560, 260])  # room for every timing stage without a scroll bar

        self.main_splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.main_splitter.setObjectName("mainSplitter")
        for widget in (self.sidebar, self.center, self.right_splitter):
            self.main_splitter.addWidget(widget)
        self.main_splitter.setStretchFactor(1, 1)
        self.main_splitter.setSizes([260, 520, 540])  # room for a readable page preview
        self.main_splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.main_splitter)
        self.status = StatusBar(self)
        self.setStatusBar(self.status)

    def _action(self, menu_title: str, text: str, slot: Callable[[], object], shortcut: str = "") -> QAction:
        menu = self._menus.get(menu_title) or self.menuBar().addMenu(menu_title)
        self._menus[menu_title] = menu
        action = menu.addAction(text)
        action.triggered.connect(lambda _checked=False: slot())
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        return action

    def _build_actions(self) -> None:
        self._menus: dict = {}
        self._action("&File", "&Add Folder…", self.library_panel.choose_folder, "Ctrl+O")
        self._action("&File", "&Export Chat as Markdown…", self.chats.export_chat, "Ctrl+Shift+S")
        self._action("&File", "&Settings…", self.open_settings, "Ctrl+,")
        self._action("&File", "&Models…", self.open_models)
        self._action("&File", "&Quit", self.close, "Ctrl+Q")
        self._action("&Chat", "&New Chat", self.chats.new_conversation, "Ctrl+N")
        self._action("&Chat", "&Ask a Question", self.focus_question, "Ctrl+L")
        self._action("&Chat", "&Rename Chat", self._rename_current, "F2")
        self._action("&Chat", "&Delete Chat", self.chats.delete_current)
        chats = self.chats
        self.copy_action = self._action("&Chat", "&Copy Answer", chats.copy_selected_answer, "Ctrl+Shift+C")
        self.stop_action = self._action("&Chat", "&Stop Answer", self.asker.stop, "Esc")
        self.stop_action.setEnabled(False)
        self._action("&Library", "&Re-index All", lambda: self.index.index(), "F5")
        self._action("&Library", "&Cancel Indexing", self.index.cancel)
        self.watch_action = self._action("&Library", "&Pause Watching", lambda: None)
        self.watch_action.setCheckable(True)
        self.watch_action.toggled.connect(self.index.set_watch_paused)
        self._action(
            "&Help",
            "Open &Log Folder",
            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(paths.log_dir()))),
        )
        self._action("&Help", "&Insights…", self.open_insights, "Ctrl+I")
        self._action("&Help", "&Keyboard Shortcuts", self.show_shortcuts, "Ctrl+/")
        self._action("&Help", "Add &Sample Documents", self.add_samples)
        self._action("&Help", "&About Almanac", self._about)

    def _connect(self) -> None:
        idx, ask, chat = self.index, self.asker, self.chat
        idx.stateChanged.connect(self.library_panel.set_state)
        idx.stateChanged.connect(self._library_changed)
        idx.busyChanged.connect(self.progress_line.set_busy)
        idx.busyChanged.connect(self.tray.set_busy)
        idx.progressChanged.connect(self.progress_line.show_progress)
        idx.progressChanged.connect(self.tray.show_progress)
        self.welcome.addFolderRequested.connect(lambda: self.library_panel.choose_folder())
        self.welcome.samplesRequested.connect(self.add_samples)
        self.suggestions.questionChosen.connect(self.chats.ask)
        self.suggestions.dismissed.connect(self._hide_suggestions)
        idx.busyChanged.connect(self.library_panel.set_indexing)
        idx.busyChanged.connect(self.status.set_indexing)
        idx.progressChanged.connect(self.status.progress.show_progress)
        idx.pausedChanged.connect(self.status.progress.set_paused)
        idx.indexFinished.connect(self._index_finished)
        idx.embedderChanged.connect(ask.set_embedder)
        idx.embedderChanged.connect(self._embedder_ready)
        self.insights.driftChecked.connect(self.drift_banner.show_signals)
        self.drift_banner.openInsights.connect(self.open_insights)
        self.status.progress.pauseToggled.connect(lambda p: idx.pause() if p else idx.resume())
        self.status.progress.cancelRequested.connect(idx.cancel)
        self.library_panel.addRequested.connect(idx.add_folders)
        self.library_panel.removeRequested.connect(self._confirm_remove)
        self.library_panel.reindexRequested.connect(idx.index)
        self.library_panel.watchPausedToggled.connect(idx.set_watch_paused)
        idx.watchStatesChanged.connect(self.library_panel.set_watch_states)
        idx.watchPausedChanged.connect(self.library_panel.set_watch_paused)
        idx.watchPausedChanged.connect(self._watch_paused_changed)
        idx.watchApplied.connect(self._watch_applied)

        ask.modelStateChanged.connect(self.status.set_model_state)
        ask.busyChanged.connect(chat.set_answering)
        ask.busyChanged.connect(self.stop_action.setEnabled)
        chat.stopRequested.connect(ask.stop)
        self.chats.chatChanged.connect(self._update_suggestions)
        self.chats.answerSelected.connect(self.copy_action.setEnabled)

    def focus_question(self) -> None:
        self.chat.input.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.chat.input.selectAll()

    def _rename_current(self) -> None:
        self.sidebar.setCurrentWidget(self.conversation_list)
        self.conversation_list.rename_current()

    # -- library ---------------------------------------------------------------------------------------

    def _confirm_remove(self, path: str) -> None:
        messages.ask(
            self,
            "Remove Folder",
            f"Remove {path} from the library?",
            informative="Its index is deleted; the files themselves are not touched.",
            yes="Remove",
            on_yes=lambda: self.index.remove_folder(path),
        )

    def _library_changed(self, state: LibraryState) -> None:
        self._library_folders = [f.path for f in state.status.folders]
        empty = not self._library_folders
        self.center.setCurrentWidget(self.welcome if empty else self.chat_column)
        self._update_suggestions()

    def add_samples(self) -> None:
        """Copy the bundled sample documents into the data folder and add them to the library."""
        try:
            folder = install_samples()
        except OSError as err:
            self.reporter.report(AlmanacError(f"Cannot copy the sample documents: {err.strerror or err}"))
            return
        self._ui.set_flag("suggestions_hidden", False)
        self.index.add_folders([str(folder)])
        self.status.showMessage("Adding the sample documents…", 4000)

    def _update_suggestions(self) -> None:
        """Questions to try, while the samples are in the library and the open chat is empty."""
        samples = str(samples_folder().resolve())
        show = (
            self._library_folders is not None
            and samples in self._library_folders
            and self.chats.current is not None
            and not self.chats.current.turns
            and not self._ui.flag("suggestions_hidden")
        )
        self.suggestions.setVisible(show)

    def _hide_suggestions(self) -> None:
        self._ui.set_flag("suggestions_hidden", True)
        self._update_suggestions()

    def _index_finished(self, report: SyncReport | None) -> None:
        if report is None:
            self.status.showMessage("Indexing stopped; what was indexed is kept.", 5000)
            return
        self.insights.after_indexing()  # reruns the self-evaluation when the index changed enough
        n = report.indexed
        # A sync that found nothing new (the run after a folder is added, say) is not "Indexed 0 files".
        words = f"Indexed {n:,} file{'' if n == 1 else 's'}" if n else "Index up to date"
        if report.deleted or report.moved:
            words += f", {report.moved:,} moved, {report.deleted:,} removed"
        if report.failed:
            words += f"; {report.failed:,} could not be read (see Library)"
        self.status.showMessage(words, 8000)

    def _watch_paused_changed(self, paused: bool) -> None:
        self.watch_action.blockSignals(True)
        self.watch_action.setChecked(paused)
        self.watch_action.blockSignals(False)
        self._ui.set_flag("watch_paused", paused)  # still paused after a restart
        self.status.showMessage("Watching paused" if paused else "Watching resumed", 3000)

    def _watch_applied(self, report: AppliedReport) -> None:
        if self.index.busy:
            return  # the progress display says more
        lines = report.lines(limit=1)
        more = len(report.changes) - 1
        words = "Library updated: " + (lines[0] if lines else "")
        self.status.showMessage(words + (f" and {more:,} more" if more > 0 else ""), 5000)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if any(Path(u.toLocalFile()).is_dir() for u in event.mimeData().urls() if u.isLocalFile()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        folders = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        folders = [f for f in folders if Path(f).is_dir()]
        if folders:
            event.acceptProposedAction()
            self.sidebar.setCurrentWidget(self.library_panel)
            self.index.add_folders(folders)

    # -- settings --------------------------------------------------------------------------------------

    def open_settings(self) -> SettingsDialog:
        if self._settings_dialog is not None:
            self._settings_dialog.raise_()
            self._settings_dialog.activateWindow()
            return self._settings_dialog
        dialog = SettingsDialog(self.settings, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._settings_accepted(dialog))
        dialog.destroyed.connect(lambda: setattr(self, "_settings_dialog", None))
        self._settings_dialog = dialog
        dialog.open()  # window-modal, without a nested event loop
        return dialog

    def _settings_accepted(self, dialog: SettingsDialog) -> None:
        self.apply_settings(dialog.values())
        if dialog.history_cleared:
            self.insights.clear_history()
            self.status.showMessage("History cleared.", 5000)

    def apply_settings(self, new: Settings) -> None:
        old, self.settings = self.settings, new
        try:
            new.save()
        except OSError as err:
            self.reporter.report(AlmanacError(f"Cannot save the settings: {err.strerror or err}"))
        self.asker.configure(new, reload_model=bool(changed(old, new, LLM_FIELDS)))
        self.insights.configure(new)
        if not changed(old, new, INDEX_FIELDS):
            return
        new_embedder = bool(changed(old, new, ("embedding_model",)))
        sync = "sync" if changed(old, new, SYNC_FIELDS) else "none"
        if not changed(old, new, REINDEX_FIELDS):
            self.index.reconfigure(new, new_embedder=False, then=sync)
            return
        rechunk = bool(changed(old, new, ("chunk_tokens", "chunk_overlap")))
        messages.ask(
            self,
            "Re-index the Library?",
            "The new " + ("embedding model" if new_embedder else "chunk size") + " applies to the whole"
            " library once it is re-indexed. Re-index now?",
            informative="Until then, answers use the index as it is"
            + (" (keyword search only)." if new_embedder else "."),
            yes="Re-index Now",
            on_yes=lambda: self.index.reconfigure(
                new, new_embedder=new_embedder, then="rebuild" if rechunk else "sync"
            ),
            no="Later",
            on_no=lambda: self.index.reconfigure(new, new_embedder=new_embedder, then=sync),
        )

    def open_models(self) -> ModelsDialog:
        """The model catalog and downloads; "Use This Model" applies like a Settings change."""
        dialog = ModelsDialog(self.settings, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.use_model.connect(
            lambda path: self.apply_settings(dataclasses.replace(self.settings, llm_path=path))
        )
        dialog.servers_changed.connect(
            lambda servers: self.apply_settings(dataclasses.replace(self.settings, answer_servers=servers))
        )
        dialog.open()
        return dialog

    def _embedder_ready(self, embedder: Embedder | None) -> None:
        if embedder is not None:
            self.insights.set_embedder(embedder)
            self.insights.check_drift()

    def open_insights(self) -> InsightsDialog:
        """Charts of the query log, self-evaluation and drift (computed on the insights thread)."""
        if self._insights_dialog is None:
            dialog = InsightsDialog(self.insights.load, self)
            self.insights.loaded.connect(dialog.view.load)
            self._insights_dialog = dialog
        self._insights_dialog.show()
        self._insights_dialog.raise_()
        self.insights.load(self._insights_dialog.view.period.currentData())
        return self._insights_dialog

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self.menuBar(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def _about(self) -> None:
        messages.message_box(
            self,
            messages.Icon.Information,
            "About Almanac",
            "Almanac answers questions about your own files, on your own computer, and shows its sources.",
        )

    # -- state and shutdown ----------------------------------------------------------------------------

    def _splitters(self) -> dict[str, QSplitter]:
        return {
            "main": self.main_splitter,
            "right": self.right_splitter,
            "sources": self.sources.splitter,
            "library": self.library_panel.splitter,
        }

    def shutdown(self) -> None:
        """Stop both threads and close what they own; safe to call twice."""
        if self._shut_down:
            return
        self._shut_down = True
        self._ui.conversation = self.chats.current.id if self.chats.current else ""
        self._ui.save(self, self._splitters(), self.sidebar)
        self.chats.abandon()
        self.asker.shutdown()
        self.index.shutdown()
        self.documents.shutdown()
        self.scans.shutdown()
        self.insights.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.hide()  # feels instant even if a running job takes a moment to stop
        self.shutdown()
        super().closeEvent(event)
