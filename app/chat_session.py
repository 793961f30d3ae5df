"""The chats: which conversation is open, the question being answered, the selected answer, feedback.

It keeps the conversations (saved as files by `ConversationStore`) and wires the chat view, the chat list
and the panels of the selected answer to the ask controller. The window owns it and only lays it out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from almanac.core.answer import QuickAnswerFound
from almanac.core.errors import AlmanacError, Cancelled
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QFileDialog, QStatusBar, QWidget

from . import messages
from .ask_controller import AskController
from .chat_export import export_conversation, suggested_name
from .chat_view import ChatView
from .conversation_list import ConversationList
from .conversations import DEFAULT_TITLE, Conversation, ConversationStore, Turn, new_conversation, title_from
from .insights_controller import InsightsController
from .sources_panel import SourcesPanel
from .timing_panel import TimingPanel


class ChatSession(QObject):
    # The open chat changed or gained a question (the window shows or hides its suggestions).
    chatChanged = Signal()  # noqa: N815 - Qt naming
    # An answer is selected (True) or none is (False): what "Copy Answer" acts on.
    answerSelected = Signal(bool)  # noqa: N815 - Qt naming

    def __init__(
        self,
        window: QWidget,
        *,
        chat: ChatView,
        chat_list: ConversationList,
        sources: SourcesPanel,
        timings: TimingPanel,
        asker: AskController,
        insights: InsightsController,
        status: QStatusBar,
        report: Callable[[BaseException], None],
    ) -> None:
        super().__init__(window)
        self.window, self.chat, self.chat_list = window, chat, chat_list
        self.sources, self.timings, self.asker, self.insights = sources, timings, asker, insights
        self.status, self.report = status, report
        self.store = ConversationStore()
        self.conversations: list[Conversation] = []
        self.current: Conversation | None = None
        self._pending: tuple[Conversation, Turn] | None = None  # the question being answered
        self._partial = ""  # its answer so far
        self.selected_turn: int | None = None

        asker.quickAnswered.connect(self._quick_answer)
        asker.tokensArrived.connect(self._tokens)
        asker.answered.connect(self._answered)
        asker.askFailed.connect(self._ask_failed)
        chat.askRequested.connect(self.ask)
        chat.turnSelected.connect(self.select_turn)
        chat.citationClicked.connect(self.show_citation)
        chat.copyRequested.connect(self.copy_answer)
        chat.askAgainRequested.connect(self.ask_again)
        chat.feedbackGiven.connect(self.give_feedback)
        sources.sourceFeedback.connect(self.give_source_feedback)
        chat_list.newRequested.connect(self.new_conversation)
        chat_list.conversationSelected.connect(self._open_conversation_id)
        chat_list.renameRequested.connect(self.rename_conversation)
        chat_list.deleteRequested.connect(self.confirm_delete)

    # -- conversations ---------------------------------------------------------------------------------

    def load(self, last_id: str) -> None:
        """Read the saved chats and open `last_id` (the one open at the last exit), else the newest."""
        self.conversations = self.store.list()
        current = next(
            (c for c in self.conversations if c.id == last_id),
            self.conversations[0] if self.conversations else None,
        )
        if current is None:
            self.new_conversation()
        else:
            self.open_conversation(current)

    def _find(self, conv_id: str) -> Conversation | None:
        return next((c for c in self.conversations if c.id == conv_id), None)

    def _streaming_text(self, conv: Conversation | None) -> str | None:
        return self._partial if self._pending is not None and self._pending[0] is conv else None

    def _refresh_list(self) -> None:
        self.chat_list.set_conversations(self.conversations, self.current.id if self.current else None)

    def new_conversation(self) -> Conversation:
        if self.current is not None and not self.current.turns:
            conv = self.current  # an empty chat is already open: no second one
        else:
            conv = new_conversation()  # saved with its first question, so empty chats do not pile up
            self.conversations.insert(0, conv)
        self.open_conversation(conv)
        self.chat.input.setFocus()
        return conv

    def open_conversation(self, conv: Conversation) -> None:
        self.current = self.store.load(conv)
        last = len(conv.turns) - 1
        selected = next((i for i in range(last, -1, -1) if conv.turns[i].answer is not None), None)
        self.chat.set_turns(conv.turns, selected, stream_text=self._streaming_text(conv))
        self._refresh_list()
        self.select_turn(selected)
        self.chatChanged.emit()

    def _open_conversation_id(self, conv_id: str) -> None:
        conv = self._find(conv_id)
        if conv is not None and conv is not self.current:
            self.open_conversation(conv)

    def rename_conversation(self, conv_id: str, title: str) -> None:
        conv = self._find(conv_id)
        if conv is not None and title:
            conv.title = title
            self._save(self.store.load(conv))
        self._refresh_list()

    def delete_conversation(self, conv_id: str) -> None:
        conv = self._find(conv_id)
        if conv is None:
            return
        if self._pending is not None and self._pending[0] is conv:
            self.asker.stop()
        self.conversations.remove(conv)
        self._write(lambda: self.store.delete(conv, self.conversations))
        if conv is self.current:
            self.current = None
            if self.conversations:
                self.open_conversation(self.conversations[0])
            else:
                self.new_conversation()
        self._refresh_list()

    def confirm_delete(self, conv_id: str) -> None:
        conv = self._find(conv_id)
        if conv is None:
            return
        if not conv.turns and conv.loaded:
            self.delete_conversation(conv_id)
            return
        messages.ask(
            self.window,
            "Delete Chat",
            f"Delete the chat “{conv.title}”?",
            yes="Delete",
            on_yes=lambda: self.delete_conversation(conv_id),
        )

    def delete_current(self) -> None:
        if self.current is not None:
            self.confirm_delete(self.current.id)

    def _save(self, conv: Conversation) -> None:
        self._write(lambda: self.store.save(conv, self.conversations))

    def _write(self, write: Callable[[], None]) -> None:
        """Chats are small files written here; a full or read-only disk is said plainly, and the chat
        goes on in memory."""
        try:
            write()
        except OSError as err:
            where = err.filename or self.store.folder
            self.report(AlmanacError(f"Cannot save your chats in {where}: {err.strerror or err}"))

    # -- asking ----------------------------------------------------------------------------------------

    def ask_again(self, turn: int) -> None:
        """The question of `turn`, answered anew past the answer cache."""
        if self.current is not None and 0 <= turn < len(self.current.turns):
            self.ask(self.current.turns[turn].question, fresh=True)

    def ask(self, question: str, *, fresh: bool = False) -> None:
        question = question.strip()
        if not question or self.asker.busy:
            return
        conv = self.current or self.new_conversation()
        if not conv.turns and conv.title == DEFAULT_TITLE:
            conv.title = title_from(question)
        turn = Turn(question)
        conv.turns.append(turn)
        self._pending, self._partial = (conv, turn), ""
        self.conversations.sort(key=lambda c: c is not conv)  # the active chat moves to the top
        self._save(conv)
        self._refresh_list()
        self.chat.set_turns(conv.turns, self.selected_turn, stream_text="")
        self.chatChanged.emit()
        self.asker.ask(question, fresh=fresh)

    def _tokens(self, text: str) -> None:
        self._partial += text
        if self._pending is not None and self._pending[0] is self.current:
            self.chat.append_stream(text)

    def _quick_answer(self, found: QuickAnswerFound) -> None:
        if self._pending is not None and self._pending[0] is self.current:
            self.chat.show_quick_answer(found.quick_answer, [found.source, found.also_source])

    def _answered(self, answer: object) -> None:
        if self._pending is None:
            return
        conv, turn = self._pending
        self._pending, self._partial = None, ""
        turn.answer = answer  # type: ignore[assignment]
        self._finish_turn(conv, turn)

    def _ask_failed(self, err: BaseException) -> None:
        if self._pending is None:
            return
        conv, turn = self._pending
        self._pending, self._partial = None, ""
        if isinstance(err, Cancelled):
            turn.error = "Stopped before the answer began."
        elif isinstance(err, AlmanacError):
            turn.error = str(err)
        else:
            turn.error = "Something went wrong; see the log file."
        self._finish_turn(conv, turn)

    def _finish_turn(self, conv: Conversation, turn: Turn) -> None:
        if conv not in self.conversations:
            return  # deleted while it was being answered
        self._save(conv)
        if conv is self.current:
            self.chat.end_stream()
            self.select_turn(conv.turns.index(turn) if turn.answer is not None else self.selected_turn)

    def abandon(self) -> None:
        """At exit: the question being answered keeps a note instead of a half-written answer."""
        if self._pending is None:
            return
        conv, turn = self._pending
        turn.error = "Almanac was closed before this answer was finished."
        self._pending = None
        if conv in self.conversations:
            self._save(conv)

    # -- the selected answer ---------------------------------------------------------------------------

    def select_turn(self, index: int | None) -> None:
        turns = self.current.turns if self.current else []
        answer = turns[index].answer if index is not None and 0 <= index < len(turns) else None
        self.selected_turn = index if answer is not None else None
        self.chat.select_turn(self.selected_turn)
        self.sources.set_answer(answer)
        if answer is not None and index is not None:
            self.sources.set_source_feedback(turns[index].source_feedback)
        self.timings.set_answer(answer)
        self.answerSelected.emit(answer is not None)

    def give_feedback(self, index: int, value: int) -> None:
        """Thumbs up / down on an answer: kept with the chat and in the query log."""
        turns = self.current.turns if self.current else []
        if not 0 <= index < len(turns) or turns[index].answer is None:
            return
        turns[index].feedback = value
        self.insights.feedback(turns[index].answer.query_id, value)
        self._save(self.current)
        self.chat.set_turns(turns, self.selected_turn, stream_text=self._streaming_text(self.current))

    def give_source_feedback(self, n: int, value: int) -> None:
        """Whether source [n] of the selected answer helped: kept with the chat and in the query log."""
        turns = self.current.turns if self.current else []
        index = self.selected_turn
        if index is None or not 0 <= index < len(turns) or turns[index].answer is None:
            return
        turn = turns[index]
        turn.source_feedback[n] = value
        chunk = next((s.hit.chunk_id for s in turn.answer.sources if s.n == n), None)
        self.insights.source_feedback(turn.answer.query_id, n, chunk, None if value == 0 else value > 0)
        self._save(self.current)

    def show_citation(self, turn: int, n: int) -> None:
        if turn != self.selected_turn:
            self.select_turn(turn)
        self.sources.select_source(n)

    def copy_answer(self, index: int) -> None:
        turns = self.current.turns if self.current else []
        if 0 <= index < len(turns) and turns[index].answer is not None:
            QApplication.clipboard().setText(turns[index].answer.text)
            self.status.showMessage("Answer copied", 3000)

    def copy_selected_answer(self) -> None:
        if self.selected_turn is not None:
            self.copy_answer(self.selected_turn)

    def export_chat(self, path: Path | None = None) -> Path | None:
        """Write the open chat, with its sources, as Markdown; asks where unless `path` is given."""
        conv = self.current
        if conv is None or not conv.turns:
            self.status.showMessage("This chat has no questions to export yet.", 4000)
            return None
        if path is None:
            name, _ = QFileDialog.getSaveFileName(
                self.window,
                "Export Chat",
                str(Path.home() / suggested_name(conv)),
                "Markdown (*.md);;All files (*)",
            )
            if not name:
                return None
            path = Path(name)
        try:
            export_conversation(conv, path)
        except OSError as err:
            self.report(AlmanacError(f"Cannot write {path}: {err.strerror or err}"))
            return None
        self.status.showMessage(f"Chat exported to {path}", 5000)
        return path
