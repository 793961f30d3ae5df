"""The list of conversations: new chat, rename (double-click or F2), delete."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .conversations import Conversation

ID_ROLE = Qt.ItemDataRole.UserRole


class ConversationList(QWidget):
    newRequested = Signal()
    conversationSelected = Signal(str)  # conversation id
    renameRequested = Signal(str, str)  # id, new title
    deleteRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget(self)
        self.list.setObjectName("conversations")
        # Long titles end in "…" (the whole title is the tooltip), not in a sideways scroll bar.
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemChanged.connect(self._on_edited)

        self.new_button = QPushButton("New Chat", self)
        self.new_button.clicked.connect(self.newRequested)
        self.delete_button = QPushButton("Delete", self)
        self.delete_button.clicked.connect(self._delete_current)
        buttons = QHBoxLayout()
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.delete_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.list, 1)

    def set_conversations(self, convs: list[Conversation], current: str | None) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for conv in convs:
            item = QListWidgetItem(conv.title)
            item.setData(ID_ROLE, conv.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            item.setToolTip(conv.title)
            self.list.addItem(item)
            if conv.id == current:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        self.delete_button.setEnabled(self.list.count() > 0)

    def titles(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def current_id(self) -> str | None:
        item = self.list.currentItem()
        return item.data(ID_ROLE) if item is not None else None

    def rename_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.list.editItem(item)

    def _on_current(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if item is not None:
            self.conversationSelected.emit(item.data(ID_ROLE))

    def _on_edited(self, item: QListWidgetItem) -> None:
        # An empty title is passed on too: the window puts the old one back.
        self.renameRequested.emit(item.data(ID_ROLE), " ".join(item.text().split()))

    def _delete_current(self) -> None:
        conv_id = self.current_id()
        if conv_id is not None:
            self.deleteRequested.emit(conv_id)

    def _menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        self.list.setCurrentItem(item)
        menu = QMenu(self)
        menu.addAction("Rename", self.rename_current)
        menu.addAction("Delete", self._delete_current)
        menu.exec(self.list.viewport().mapToGlobal(pos))
