"""Conversations, kept across restarts as JSON files in <data dir>/conversations/.

One file per conversation (its turns, each answer with its sources and timings, so a past answer still
explains itself), plus a small `index.json` with the titles so the sidebar fills without reading every
file. Writes are atomic (temporary file, then rename). The index database is never touched from here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from almanac.core import paths
from almanac.core.answer import Answer, Source
from almanac.core.fallback import Attempt
from almanac.core.hits import Hit
from almanac.core.quick_answer import QuickAnswer
from almanac.core.timing import Timings

log = logging.getLogger(__name__)

FORMAT = 1
DEFAULT_TITLE = "New chat"


@dataclass
class Turn:
    question: str
    answer: Answer | None = None  # None while it is being written, or when asking failed
    error: str = ""  # why there is no answer
    asked_at: float = field(default_factory=time.time)
    feedback: int = 0  # the user's thumbs: +1, -1, or 0 for none (also in the query log)
    source_feedback: dict[int, int] = field(default_factory=dict)  # source n -> +1 helped / -1 did not


@dataclass
class Conversation:
    id: str
    title: str = DEFAULT_TITLE
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    turns: list[Turn] = field(default_factory=list)
    loaded: bool = True  # False: only the index entry has been read so far


def new_conversation() -> Conversation:
    return Conversation(id=uuid.uuid4().hex[:12])


def title_from(question: str, limit: int = 48) -> str:
    line = " ".join(question.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


# -- JSON ------------------------------------------------------------------------------------------------


def _pick(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """Only the keys `cls` knows: files written by other versions still load."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def answer_to_json(answer: Answer) -> dict[str, Any]:
    return dataclasses.asdict(answer)


def answer_from_json(data: dict[str, Any]) -> Answer:
    sources = []
    for s in data.get("sources", []):
        hit = dict(s["hit"])
        hit["snippet_marks"] = [tuple(m) for m in hit.get("snippet_marks", [])]
        sources.append(Source(int(s["n"]), Hit(**_pick(Hit, hit))))
    values = _pick(Answer, data)
    values["sources"] = sources
    values["timings"] = Timings(dict(data.get("timings", {}).get("stages", {})))
    values["cited"] = [int(n) for n in data.get("cited", [])]
    values["attempts"] = [Attempt(**_pick(Attempt, a)) for a in data.get("attempts", [])]
    quick = data.get("quick_answer")
    values["quick_answer"] = QuickAnswer.from_dict(quick) if quick else None
    return Answer(**values)


def turn_to_json(turn: Turn) -> dict[str, Any]:
    return {
        "question": turn.question,
        "answer": answer_to_json(turn.answer) if turn.answer is not None else None,
        "error": turn.error,
        "asked_at": turn.asked_at,
        "feedback": turn.feedback,
        "source_feedback": {str(n): v for n, v in turn.source_feedback.items()},
    }


def turn_from_json(data: dict[str, Any]) -> Turn:
    answer = data.get("answer")
    return Turn(
        question=str(data.get("question", "")),
        answer=answer_from_json(answer) if answer else None,
        error=str(data.get("error", "")),
        asked_at=float(data.get("asked_at", 0.0)),
        feedback=int(data.get("feedback", 0)),
        source_feedback={int(n): int(v) for n, v in dict(data.get("source_feedback", {})).items()},
    )


def _header(conv: Conversation) -> dict[str, Any]:
    return {"id": conv.id, "title": conv.title, "created": conv.created, "updated": conv.updated}


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


class ConversationStore:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or paths.data_dir() / "conversations"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._index = self.folder / "index.json"

    def _file(self, conv_id: str) -> Path:
        return self.folder / f"{conv_id}.json"

    def list(self) -> list[Conversation]:
        """Every conversation, newest first, with turns not yet loaded (see `load`)."""
        try:
            entries = json.loads(self._index.read_text(encoding="utf-8"))["conversations"]
            convs = [Conversation(**_pick(Conversation, e), loaded=False) for e in entries]
        except FileNotFoundError:
            convs = self._scan()
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("conversation index unreadable; rebuilding it from the files")
            convs = self._scan()
        convs = [c for c in convs if self._file(c.id).exists()]
        return sorted(convs, key=lambda c: c.updated, reverse=True)

    def load(self, conv: Conversation) -> Conversation:
        """Read the turns of `conv` (in place); a damaged file gives an empty conversation, logged."""
        if conv.loaded:
            return conv
        try:
            data = json.loads(self._file(conv.id).read_text(encoding="utf-8"))
            conv.turns = [turn_from_json(t) for t in data.get("turns", [])]
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("cannot read conversation %s: %s", conv.id, err)
            conv.turns = []
        conv.loaded = True
        return conv

    def save(self, conv: Conversation, others: list[Conversation]) -> None:
        """Write `conv`, and the index of all conversations (`others` includes or excludes it)."""
        conv.updated = time.time()
        data = _header(conv) | {"format": FORMAT, "turns": [turn_to_json(t) for t in conv.turns]}
        _write_json(self._file(conv.id), data)
        self.save_index([conv, *[c for c in others if c.id != conv.id]])

    def save_index(self, convs: list[Conversation]) -> None:
        _write_json(self._index, {"format": FORMAT, "conversations": [_header(c) for c in convs]})

    def delete(self, conv: Conversation, remaining: list[Conversation]) -> None:
        try:
            self._file(conv.id).unlink()
        except FileNotFoundError:
            pass
        self.save_index([c for c in remaining if c.id != conv.id])

    def _scan(self) -> list[Conversation]:
        convs = []
        for file in self.folder.glob("*.json"):
            if file == self._index:
                continue
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
                conv = Conversation(**_pick(Conversation, data), loaded=False)
                conv.turns = []
                convs.append(conv)
            except (OSError, ValueError, TypeError) as err:
                log.warning("skipping unreadable conversation %s: %s", file.name, err)
        return convs
