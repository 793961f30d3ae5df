"""A chat as a Markdown file: each question, its answer, and the numbered sources the answer's [n] point to.

Qt-free on purpose (plain text in, plain text out), so the format is tested without a window.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from .conversations import Conversation, Turn

STOPPED_NOTES = {
    "cancelled": "Stopped before the answer was finished.",
    "timeout": "Stopped: the answer took longer than the time limit.",
    "length": "Cut short at the answer length limit.",
}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _link(path: str) -> str:
    """A Markdown link to the file (a file:// URL, so spaces and brackets in names survive)."""
    name = Path(path).name or path
    name = re.sub(r"([\[\]])", r"\\\1", name)
    try:
        return f"[{name}](<{Path(path).as_uri()}>)"
    except ValueError:  # not an absolute path
        return name


def _turn(turn: Turn) -> list[str]:
    lines = [f"## {_one_line(turn.question)}", ""]
    answer = turn.answer
    if answer is None:
        lines += [f"*No answer: {turn.error or 'none was written.'}*", ""]
        return lines
    quick = answer.quick_answer  # the sentence from the files shown above the model's words
    if quick is not None:  # as the chat shows it: a second sentence on an "Also:" line
        quoted = [f"“{_one_line(p.text)}” [{p.n}]" for p in quick.parts]
        lines += [f"> From your files: {quoted[0]}", *(f">\n> Also: {q}" for q in quoted[1:]), ""]
    lines += [answer.text.strip() or "*(empty answer)*", ""]
    if answer.stopped in STOPPED_NOTES:
        lines += [f"*{STOPPED_NOTES[answer.stopped]}*", ""]
    if not answer.sources:
        return lines
    lines += ["**Sources**", ""]
    cited = set(answer.cited)
    for source in answer.sources:
        hit = source.hit
        where = [w for w in (hit.heading, f"page {hit.page}" if hit.page else "") if w]
        head = f"{source.n}. {_link(hit.path)}" + (f" — {', '.join(where)}" if where else "")
        if source.n in cited:
            head += " *(cited)*"
        lines += [head, f"   `{hit.path}`"]
        if hit.snippet:
            lines.append(f"   > {_one_line(hit.snippet)}")
        lines.append("")
    return lines


def conversation_markdown(conv: Conversation, *, now: float | None = None) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() if now is None else now))
    questions = len(conv.turns)
    lines = [
        f"# {_one_line(conv.title)}",
        "",
        f"*Exported from Almanac on {stamp}; {questions} question{'s' if questions != 1 else ''}. "
        "Numbers in brackets, like [1], refer to the sources listed under each answer.*",
        "",
    ]
    for turn in conv.turns:
        lines += _turn(turn)
    return "\n".join(lines).rstrip() + "\n"


def export_conversation(conv: Conversation, path: Path) -> None:
    """Write the Markdown atomically (a temporary file, then a rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(conversation_markdown(conv), encoding="utf-8")
    os.replace(tmp, path)


def suggested_name(conv: Conversation) -> str:
    safe = " ".join(re.sub(r'[\\/:*?"<>|]+', " ", conv.title).split()).strip(" .") or "chat"
    return f"{safe[:80]}.md"
