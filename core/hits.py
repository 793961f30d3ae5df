"""What retrieval returns: ranked hits that say why they ranked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .timing import Timings

Mode = Literal["hybrid", "vector", "keyword"]
MODES: tuple[Mode, ...] = ("hybrid", "vector", "keyword")


@dataclass
class Hit:
    chunk_id: int
    document_id: int
    path: str
    title: str
    page: int | None  # 1-based page for PDFs, else None
    heading: str  # heading path ("Install > Linux"), "" when none
    text: str  # the whole chunk
    snippet: str  # a short window of the chunk around the query terms
    snippet_marks: list[tuple[int, int]]  # [start, end) character ranges of query terms in `snippet`
    score: float  # fused score (higher is better); in single modes, that mode's rank score
    keyword_rank: int | None = None  # 1-based rank in the BM25 list, None if not in it
    keyword_score: float | None = None  # FTS5 bm25(): negative, lower is better
    vector_rank: int | None = None  # 1-based rank in the vector list
    vector_distance: float | None = None  # cosine distance, 0 is identical
    # Where the chunk is in its document's extracted text (sections joined by a blank line, as indexed):
    # text == document_text[start:end] while the file is unchanged. None where not known.
    start: int | None = None
    end: int | None = None

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "title": self.title,
            "page": self.page,
            "heading": self.heading,
            "score": round(self.score, 6),
            "keyword_rank": self.keyword_rank,
            "keyword_score": None if self.keyword_score is None else round(self.keyword_score, 4),
            "vector_rank": self.vector_rank,
            "vector_distance": None if self.vector_distance is None else round(self.vector_distance, 4),
            "text": self.text,
            "snippet": self.snippet,
            "chunk_id": self.chunk_id,
        }


@dataclass
class SearchResult:
    query: str
    mode: Mode
    hits: list[Hit]
    timings: Timings = field(default_factory=Timings)
