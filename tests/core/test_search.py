"""Retrieval on the real SQLite + FTS5 + sqlite-vec, with the fast fake embedder."""

from __future__ import annotations

import numpy as np
import pytest
from almanac.core import search, vocabulary
from almanac.core.embedding import HashEmbedder
from almanac.core.errors import QueryError
from almanac.core.library import Library
from almanac.core.search import (
    FusionConfig,
    KeywordQuery,
    Searcher,
    fts_query,
    make_snippet,
    phrases_match,
    rrf,
    term_spans,
)
from almanac.core.settings import Settings


@pytest.fixture(params=["fts5", "keyword_index"])
def words_by(request, monkeypatch):
    """The query's words scored by FTS5 (small libraries) or by keyword_index (big ones), forced here."""
    monkeypatch.setattr(search, "KEYWORD_INDEX_MIN_CHUNKS", 0 if request.param == "keyword_index" else 10**9)
    return request.param


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    hash_embedder = HashEmbedder()
    tmp_path = tmp_path_factory.mktemp("search")
    root = tmp_path / "lib"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "a" / "kettle.md").write_text("# Kettle\n\nDescale the kettle with vinegar every month.\n")
    (root / "a" / "bikes.txt").write_text("Chain lubrication keeps a bicycle drivetrain quiet.\n")
    (root / "b" / "tea.txt").write_text("Green tea brews best below boiling, at 80 degrees.\n")
    (root / "b" / "cjk.txt").write_text("東京は日本の首都です。 Tokyo is the capital.\n")
    db = tmp_path / "index.db"
    with Library(db, settings=Settings(), embedder=hash_embedder) as lib:
        lib.add_folder(root)
        lib.index()
    searcher = Searcher(db, hash_embedder)
    yield root, searcher
    searcher.close()


HOSTILE = [
    '"unbalanced quote',
    "kettle NEAR vinegar",
    "kettle AND OR NOT",
    "title:kettle",
    "kett*",
    "(((kettle",
    "kettle)",
    "^kettle",
    "col:val - + {} [] ; -- DROP TABLE chunks;",
    "東京",
    "NEAR(",
    "\"\"\"",
    "a" * 5000,
]


@pytest.mark.parametrize("query", HOSTILE)
@pytest.mark.parametrize("mode", ["hybrid", "keyword", "vector"])
def test_fts_hostile_queries_never_fail(indexed, query, mode):
    _, searcher = indexed
    result = searcher.search(query, k=5, mode=mode)
    assert isinstance(result.hits, list)


def test_hostile_queries_still_find(indexed, words_by):
    _, searcher = indexed
    for q in ["kettle NEAR vinegar", "title:kettle", "(((kettle", '"kettle']:
        hits = searcher.search(q, k=3, mode="keyword").hits
        assert hits and hits[0].path.endswith("kettle.md"), q
    assert searcher.search("東京は日本の首都です", k=3, mode="keyword").hits[0].path.endswith("cjk.txt")


def test_punctuation_only_and_empty(indexed):
    _, searcher = indexed
    assert searcher.search("?!?", k=3, mode="keyword").hits == []
    for q in ["", "   "]:
        with pytest.raises(QueryError):
            searcher.search(q, k=3)


def test_fts_query_quotes_everything():
    assert fts_query('say "hi" NEAR x') == '"say" OR "hi" OR "NEAR" OR "x"'
    assert fts_query("What is the capital of France?") == '"capital" OR "France"'
    assert fts_query("to be or not to be") == '"to" OR "be" OR "or" OR "not"'
    assert fts_query("... !!!") is None


def test_hit_explains_its_rank(indexed, words_by):
    _, searcher = indexed
    hit = searcher.search("descale kettle vinegar", k=3).hits[0]
    assert hit.path.endswith("kettle.md")
    assert hit.keyword_rank == 1 and hit.vector_rank is not None
    assert hit.keyword_score < 0 and 0 <= hit.vector_distance <= 2
    assert hit.heading == "Kettle"
    marked = {hit.snippet[s:e].lower() for s, e in hit.snippet_marks}
    assert {"descale", "kettle", "vinegar"} <= marked


def test_words_the_library_lacks(indexed, monkeypatch):
    _, searcher = indexed
    assert searcher.unknown_words(["espresso"]) == []  # four files: too few for absence to mean much
    monkeypatch.setattr(vocabulary, "UNKNOWN_MIN_CHUNKS", 0)
    # Held in a passage's text (stemmed: "descaling" as "descale"), title ("kettle") or path ("bikes").
    assert searcher.unknown_words(["descaling", "Kettle", "bikes", "東京"]) == []
    assert searcher.unknown_words(["espresso", "vinegar", "qu"]) == ["espresso", "qu"]
    # One edit from a word held: a misspelling of it, not a word the library lacks; short words are not judged so.
    assert searcher.unknown_words(["vinegr", "lubricaton", "tae"]) == ["tae"]
    assert searcher.unknown_words(["xkettle", "tkettle"]) == ["xkettle", "tkettle"]  # the first letter is kept
    # A pasted page: at most `limit` reported, and a long "word" is looked up once, not as misspelt.
    assert searcher.unknown_words(["espresso", "mocha", "latte", "ristretto"], limit=2) == ["espresso", "mocha"]
    assert searcher.unknown_words(["vinegarvinegarvinegarx"]) == ["vinegarvinegarvinegarx"]


def test_folder_filter(indexed):
    root, searcher = indexed
    hits = searcher.search("tea kettle bicycle", k=10, folders=[str(root / "b")]).hits
    assert hits and all("/b/" in h.path for h in hits)


def test_rrf_rewards_agreement_and_weights():
    cfg = FusionConfig(rrf_k=60, keyword_weight=1.0, vector_weight=1.0)
    fused = rrf([1, 2, 3], [3, 4, 1], cfg)
    assert [cid for cid, _ in fused][:2] == [1, 3]
    only_vec = rrf([1, 2], [2, 1], FusionConfig(keyword_weight=0.0))
    assert only_vec[0][0] == 2


class StubEmbedder:
    """Vectors chosen by hand, to build a case where each retriever alone fails."""

    name, dim, max_tokens = "stub", 8, 254

    def __init__(self, table):
        self.table = table

    def token_spans(self, text):
        import re

        return [m.span() for m in re.finditer(r"\S+", text)]

    def embed(self, texts):
        import numpy as np

        rows = []
        for t in texts:
            v = np.array(next((vec for key, vec in self.table.items() if key in t), [0, 0, 0, 1]) + [0] * 4, dtype=np.float32)
            rows.append(v / np.linalg.norm(v))
        return np.stack(rows)


def test_fusion_beats_each_retriever_alone(tmp_path):
    """The right document is 2nd in both lists, while each list's 1st is a decoy only that list likes."""
    root = tmp_path / "lib"
    root.mkdir()
    docs = {
        "answer.txt": "zebra migration routes across the plains",  # good for both
        "kw_decoy.txt": "zebra zebra migration migration routes routes trivia",  # keyword loves it
        "vec_decoy.txt": "semantic twin in embedding space",  # vector loves it
    }
    # Unrelated documents make the query's words rare, as in a real library (BM25 needs that).
    docs |= {f"noise{i}.txt": f"unrelated gardening notes number {i}" for i in range(12)}
    for name, text in docs.items():
        (root / name).write_text(text)
    table = {  # first key found in a text picks its vector
        "plains": [0.9, 0.44, 0, 0],
        "trivia": [0, 1, 0, 0],
        "gardening": [0, 0, 1, 0],
        "semantic twin": [1, 0, 0, 0],
        "zebra migration routes": [1, 0, 0, 0],  # the query itself
    }
    emb = StubEmbedder(table)
    with Library(tmp_path / "i.db", settings=Settings(), embedder=emb) as lib:
        lib.add_folder(root)
        lib.index()
    s = Searcher(tmp_path / "i.db", emb)
    q = "zebra migration routes"
    top = {m: s.search(q, k=1, mode=m).hits[0].path.rsplit("/", 1)[1] for m in ("keyword", "vector", "hybrid")}
    assert top == {"keyword": "kw_decoy.txt", "vector": "vec_decoy.txt", "hybrid": "answer.txt"}
    s.close()


def test_snippet_window_and_marks():
    text = "intro " * 100 + "the kettle needs descaling with vinegar" + " outro" * 100
    snippet, marks = make_snippet(text, {"kettle", "vinegar", "the"})
    assert "kettle" in snippet and snippet.startswith("…") and snippet.endswith("…")
    assert {snippet[s:e] for s, e in marks} == {"kettle", "vinegar"}


def test_a_short_term_marks_only_itself():
    # "Emma's father": the "s" is a term, but no mark for every word starting with s (the sources panel, too).
    text = "Emma's father should suffer so much; his father's house"
    assert [text[a:b] for a, b in term_spans(text, {"s", "father"})] == ["s", "father", "father", "s"]
    assert [text[a:b] for a, b in term_spans(text, {"hou", "fa"})] == ["house"]


# -- exact identifiers and phrases (real FTS5) ------------------------------------------------------------


@pytest.fixture(scope="module")
def identifiers(tmp_path_factory):
    """Each exact sequence sits in one passage of a file 60 folders deep; shallow files share its parts."""
    emb = HashEmbedder()
    tmp = tmp_path_factory.mktemp("ids")
    root = tmp / "lib"
    deep = root.joinpath(*[f"level{i}-nested-folder" for i in range(60)])
    deep.mkdir(parents=True)
    (deep / "incident.txt").write_text(
        "Ticket WOMBAT-OK-14 closed after the rollback. The gateway logged ERR_CONN_RESET twice.\n\n"
        "We call jit.flush before every snapshot."
    )
    shallow = {
        "a.txt": "wombat ok: the wombat survey says ok, ok, wombat numbers are fine",
        "b.txt": "ticket WOMBAT-OK-15 has 14 items, all ok; wombat team",
        "c.txt": "conn reset err: reset the conn after an err, conn conn reset",
        "d.txt": "ERR_CONN_REFUSED and a reset of the conn",
        "e.txt": "the jit compiler can flush; flush the jit cache, jit compilers flush often, flush jit",
        "f.txt": "green leaves steeped as tea; tea that is green",
        "g.txt": "a cup of green tea in the morning",
    }
    for name, text in shallow.items():
        (root / name).write_text(text)
    db = tmp / "ids.db"
    with Library(db, settings=Settings(), embedder=emb) as lib:
        lib.add_folder(root)
        lib.index()
    s = Searcher(db, emb)
    yield s
    s.close()


@pytest.mark.parametrize(
    "query", ["WOMBAT-OK-14", "ERR_CONN_RESET", "jit.flush", "what happened to WOMBAT-OK-14?", "why ERR_CONN_RESET"]
)
def test_exact_identifier_ranks_first(identifiers, query, words_by):
    hits = identifiers.search(query, k=5, mode="keyword").hits
    assert hits[0].path.endswith("incident.txt"), [h.path.rsplit("/", 1)[1] for h in hits]
    hybrid = identifiers.search(query, k=5, mode="hybrid").hits
    assert any(h.path.endswith("incident.txt") and h.keyword_rank == 1 for h in hybrid)


def test_parts_still_match_without_the_sequence(identifiers, words_by):
    names = {h.path.rsplit("/", 1)[1] for h in identifiers.search("WOMBAT-OK-14", k=10, mode="keyword").hits}
    assert {"incident.txt", "a.txt", "b.txt"} <= names


def test_quoted_phrase_matches_as_phrase(identifiers, words_by):
    hits = identifiers.search('"green tea"', k=5, mode="keyword").hits
    assert hits[0].path.endswith("g.txt")
    assert hits[1].path.endswith("f.txt")  # both words, not as a phrase: after it


def test_keyword_query_parts():
    q = KeywordQuery.parse('why is "Green  Tea" ERR_CONN_RESET and jit.flush() doesn\'t WOMBAT-OK-14?')
    assert q.phrases == ["green tea"]
    assert q.identifiers == ["err conn reset", "jit flush", "wombat ok 14"]
    assert "doesn" in q.words and "why" not in q.words
    assert phrases_match(q.phrases + q.identifiers[:1]) == '{text title} : ("green tea" OR "err conn reset")'


# -- folder scopes ----------------------------------------------------------------------------------------


def test_tiny_folder_beside_a_large_one(tmp_path, words_by):
    """300 passages in a big folder outrank the one in a tiny folder on every list: the scope must still
    find it (the old global top-N post-filter returned nothing), whichever scores the words."""
    emb = HashEmbedder()
    big, tiny = tmp_path / "big", tmp_path / "tiny"
    big.mkdir()
    tiny.mkdir()
    for i in range(300):
        (big / f"n{i}.txt").write_text(f"kettle descale vinegar kettle descale vinegar kettle note {i}")
    (tiny / "one.txt").write_text("an old kettle in the shed, among other tools and garden things")
    sibling = tmp_path / "tiny-extra"  # its name extends the tiny folder's: it must stay outside the scope
    sibling.mkdir()
    (sibling / "two.txt").write_text("another kettle")
    db = tmp_path / "i.db"
    with Library(db, settings=Settings(), embedder=emb) as lib:
        for folder in (big, tiny, sibling):
            lib.add_folder(folder)
        lib.index()
    s = Searcher(db, emb)
    try:
        for mode in ("keyword", "vector", "hybrid"):
            assert not any(h.path.endswith("one.txt") for h in s.search("kettle descale vinegar", k=10, mode=mode).hits)
            hits = s.search("kettle descale vinegar", k=10, mode=mode, folders=[str(tiny)]).hits
            assert [h.path.rsplit("/", 1)[1] for h in hits] == ["one.txt"], mode
        # A file's own path is a scope too.
        hits = s.search("kettle", k=10, mode="keyword", folders=[str(tiny / "one.txt")]).hits
        assert [h.path.rsplit("/", 1)[1] for h in hits] == ["one.txt"]
    finally:
        s.close()


def test_a_scope_scores_as_fts5_does_with_the_whole_librarys_statistics(tmp_path, monkeypatch):
    """keyword_index inside a folder scope ranks as FTS5 does (bm25 with the whole library's statistics,
    restricted to the scope's rows)."""
    rng = np.random.default_rng(3)
    words = "kettle descale vinegar garden shed bicycle chain oil river bridge stone tea".split()
    folders = [tmp_path / f"f{i}" for i in range(3)]
    for folder in folders:
        folder.mkdir()
        for j in range(40):
            (folder / f"n{j}.txt").write_text(" ".join(rng.choice(words, size=int(rng.integers(3, 30)))))
    db = tmp_path / "i.db"
    with Library(db, settings=Settings(), embedder=HashEmbedder()) as lib:
        for folder in folders:
            lib.add_folder(folder)
        lib.index()
    s = Searcher(db, HashEmbedder())
    try:
        for scope in ([str(folders[1])], [str(folders[0]), str(folders[2])]):
            got = {}
            for way, threshold in (("fts5", 10**9), ("keyword_index", 0)):
                monkeypatch.setattr(search, "KEYWORD_INDEX_MIN_CHUNKS", threshold)
                hits = s.search("kettle vinegar bridge tea", k=200, mode="keyword", folders=scope).hits
                got[way] = [(h.chunk_id, h.score) for h in hits]
            assert got["keyword_index"] and [c for c, _ in got["keyword_index"]] == [c for c, _ in got["fts5"]]
            for chunk_id, _ in got["keyword_index"]:
                path = s.conn.execute(
                    "SELECT d.path FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id = ?", (chunk_id,)
                ).fetchone()[0]
                assert any(path.startswith(folder + "/") for folder in scope)
    finally:
        s.close()
