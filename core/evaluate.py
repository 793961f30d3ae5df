"""Retrieval quality on a labelled set: BEIR-format qrels scored with nDCG@10 and Recall@100 per mode.

A BEIR folder holds `queries.jsonl` ({"_id", "text"}) and `qrels/<split>.tsv` (query-id, corpus-id, score,
with a header line). Corpus ids are matched to indexed files by file name, with or without its extension, so
a library made of files named after the corpus ids (`4983.txt`) can be scored as it is.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath

from .errors import AlmanacError
from .hits import Hit, Mode, SearchResult

SearchFn = Callable[..., SearchResult]


@dataclass
class ModeScore:
    mode: str
    ndcg10: float
    recall100: float
    queries: int

    def to_json(self) -> dict:
        return {
            "mode": self.mode,
            "ndcg@10": round(self.ndcg10, 4),
            "recall@100": round(self.recall100, 4),
            "queries": self.queries,
        }


def load_beir(folder: Path, split: str = "test") -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """(query id -> text, query id -> {corpus id: relevance}) for the queries that have judgments."""
    folder = Path(folder)
    qrels_file = folder / "qrels" / f"{split}.tsv"
    queries_file = folder / "queries.jsonl"
    for f in (qrels_file, queries_file):
        if not f.is_file():
            raise AlmanacError(f"{folder} is not a BEIR folder: {f.relative_to(folder)} is missing.")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_file.open(encoding="utf-8") as fh:
        rows = csv.reader(fh, delimiter="\t")
        for i, row in enumerate(rows):
            if len(row) < 3 or (i == 0 and not row[2].strip().lstrip("-").isdigit()):
                continue  # header or blank line
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries: dict[str, str] = {}
    with queries_file.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                if obj["_id"] in qrels:
                    queries[obj["_id"]] = obj["text"]
    if not queries:
        raise AlmanacError(f"No query in {queries_file.name} has a judgment in {qrels_file.name}.")
    return queries, qrels


def doc_key(path: str) -> str:
    """The corpus id a file stands for: its name without the extension."""
    return PurePath(path).stem


def ranked_docs(hits: Iterable[Hit]) -> list[str]:
    """Document keys in order of each document's best-ranked chunk."""
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(doc_key(hit.path), None)
    return list(seen)


def ndcg_at(ranked: list[str], rels: dict[str, int], k: int = 10) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], rels: dict[str, int], k: int = 100) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def evaluate(
    search: SearchFn,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    modes: Iterable[Mode] = ("hybrid", "keyword", "vector"),
    *,
    depth: int = 300,
    progress: Callable[[int, int], None] | None = None,
) -> list[ModeScore]:
    """Score `search(query, k=..., mode=...)` on every judged query, per mode."""
    modes = list(modes)
    out = []
    total = len(queries) * len(modes)
    done = 0
    for mode in modes:
        ndcg = recall = 0.0
        for qid, text in queries.items():
            ranked = ranked_docs(search(text, k=depth, mode=mode).hits)
            ndcg += ndcg_at(ranked, qrels[qid], 10)
            recall += recall_at(ranked, qrels[qid], 100)
            done += 1
            if progress is not None:
                progress(done, total)
        n = len(queries)
        out.append(ModeScore(mode, ndcg / n, recall / n, n))
    return out
