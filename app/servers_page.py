"""Answer servers: OpenAI-compatible endpoints tried before the local model, with a test button.

Edits a copy of the `answer_servers` setting and emits `servers_changed(list)`; the window applies it. API
keys go straight to the key store (core/keys.py), never into settings. "Test" sends a four-token question
on its own job thread and shows how long the first token took, or the error's category and message.
"""

from __future__ import annotations

import copy
import time

from almanac.core import keys
from almanac.core.backends import BackendError, OpenAIBackend, Timeouts
from almanac.core.errors import AlmanacError
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .jobs import JobThread
from .tables import row_table

COLUMNS = ("Name", "Address", "Model", "API key")
TEST_TIMEOUTS = Timeouts(connect=5, first_token=30, idle=10, total=30)


class ServersPage(QWidget):
    servers_changed = Signal(list)  # the new answer_servers setting
    tested = Signal(str)  # the test's result, as shown

    def __init__(self, servers: list[dict], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.servers = copy.deepcopy(servers)
        self._jobs: JobThread | None = None

        intro = QLabel(
            "Servers are asked in this order before the local model; if one cannot answer before its first "
            "word, the next one is. Any OpenAI-compatible server works (llama.cpp, Ollama, LM Studio, vLLM).",
            self,
        )
        intro.setWordWrap(True)
        self.table = row_table(COLUMNS, self)
        self.table.horizontalHeader().setStretchLastSection(True)

        self.name = QLineEdit(self)
        self.name.setPlaceholderText("office")
        self.base_url = QLineEdit(self)
        self.base_url.setPlaceholderText("http://192.168.1.20:8080/v1")
        self.model = QLineEdit(self)
        self.model.setPlaceholderText("qwen2.5-7b-instruct")
        self.api_key = QLineEdit(self)
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setPlaceholderText("optional; kept in the system keyring or a private file")
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Address", self.base_url)
        form.addRow("Model", self.model)
        form.addRow("API key", self.api_key)

        self.save_button = QPushButton("Add or Update", self)
        self.remove_button = QPushButton("Remove", self)
        self.test_button = QPushButton("Test", self)
        self.result = QLabel(self)
        self.result.setWordWrap(True)
        row = QHBoxLayout()
        for b in (self.save_button, self.remove_button, self.test_button):
            row.addWidget(b)
        row.addStretch(1)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.result)

        self.table.itemSelectionChanged.connect(self._selected)
        self.save_button.clicked.connect(self.save)
        self.remove_button.clicked.connect(self.remove)
        self.test_button.clicked.connect(self.test)
        self._refresh()

    def _refresh(self) -> None:
        self.table.setRowCount(len(self.servers))
        for row, s in enumerate(self.servers):
            stored = "stored" if keys.get_api_key(s["name"]) else "none"
            for col, text in enumerate((s["name"], s["base_url"], s["model"], stored)):
                self.table.setItem(row, col, QTableWidgetItem(text))

    def _selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            s = self.servers[rows[0].row()]
            self.name.setText(s["name"])
            self.base_url.setText(s["base_url"])
            self.model.setText(s["model"])
            self.api_key.clear()

    def _spec(self) -> dict | None:
        name, url, model = self.name.text().strip(), self.base_url.text().strip(), self.model.text().strip()
        if not (name and url and model):
            self.result.setText("A server needs a name, an address and a model.")
            return None
        try:
            OpenAIBackend(url, model, name=name)  # checks the address
        except AlmanacError as err:
            self.result.setText(str(err))
            return None
        return {"name": name, "base_url": url, "model": model}

    def save(self) -> None:
        spec = self._spec()
        if spec is None:
            return
        existing = next((s for s in self.servers if s["name"] == spec["name"]), None)
        if existing is not None:
            existing.update(spec)  # keeps its timeouts
        else:
            self.servers.append(spec)
        if self.api_key.text():
            keys.set_api_key(spec["name"], self.api_key.text())
            self.api_key.clear()
        self._refresh()
        self.result.setText(f"Saved {spec['name']}.")
        self.servers_changed.emit(copy.deepcopy(self.servers))

    def remove(self) -> None:
        name = self.name.text().strip()
        if not any(s["name"] == name for s in self.servers):
            return
        self.servers = [s for s in self.servers if s["name"] != name]
        keys.delete_api_key(name)
        self._refresh()
        self.result.setText(f"Removed {name}.")
        self.servers_changed.emit(copy.deepcopy(self.servers))

    # -- testing -------------------------------------------------------------------------------------

    def test(self) -> None:
        spec = self._spec()
        if spec is None or self._jobs is not None:
            return
        key = self.api_key.text() or keys.get_api_key(spec["name"])
        backend = OpenAIBackend(spec["base_url"], spec["model"], name=spec["name"], api_key=key,
                                timeouts=TEST_TIMEOUTS)
        self.result.setText(f"Asking {spec['name']}…")
        self.test_button.setEnabled(False)
        self._jobs = JobThread("server-test", on_error=self._test_failed, parent=self)
        self._jobs.submit(lambda: _probe(backend), success=self._test_done, failure=self._test_failed)

    def _test_done(self, message: str) -> None:
        self._end_test(message)

    def _test_failed(self, err: BaseException) -> None:
        if not isinstance(err, AlmanacError):
            self._end_test("The test failed unexpectedly.")
            raise err
        category = f" ({err.category})" if isinstance(err, BackendError) else ""
        self._end_test(f"No answer{category}: {err}")

    def _end_test(self, message: str) -> None:
        if self._jobs is not None:
            self._jobs.stop()
            self._jobs = None
        self.test_button.setEnabled(True)
        self.result.setText(message)
        self.tested.emit(message)

    def shutdown(self) -> None:
        if self._jobs is not None:
            self._jobs.stop()
            self._jobs = None


def _probe(backend: OpenAIBackend) -> str:
    start = time.perf_counter()
    first: float | None = None
    pieces = []
    for piece in backend.stream_chat([{"role": "user", "content": "Reply with the word OK."}], max_tokens=4):
        first = first if first is not None else time.perf_counter()
        pieces.append(piece)
    ms = ((first or time.perf_counter()) - start) * 1000
    return f"{backend.name} answered (first word after {ms:.0f} ms): {''.join(pieces).strip()!r}"
