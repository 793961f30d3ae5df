"""Indexing in two phases, because embedding is the cost.

Phase 1 (`sync`) scans folders, extracts and chunks changed files and writes chunks + FTS rows: every file is
keyword-searchable within seconds. Phase 2 (`embed_pending`) gives vectors to chunks that lack one. That
queue is the index itself (`chunks.embedded = 0`), so it survives restarts and crashes.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import apsw
import numpy as np

from . import db, keyword_index, store, vector_index
from .cancel import CancelToken
from .chunking import chunk_text
from .embedding import Embedder, TokenCounter
from .errors import ExtractionError
from .extractors import Extracted, OcrOptions, is_binary, kind_of
from .extractors.model import storable
from .extractors.ocr_cache import default_cache_dir
from .extractors.text import BINARY_REASON
from .extractors.worker import ExtractionWorker
from .ignore import IgnoreRules, is_secret, walk
from .secret_files import PRIVATE_KEY_REASON, holds_private_key
from .settings import Settings

log = logging.getLogger(__name__)

SECTION_JOIN = "\n\n"  # chunk offsets are into the sections joined with this


@dataclass
class Progress:
    # "scanning" | "reading" | "preparing" (the embedding model) | "embedding" | "building" (a big library's
    # vector or keyword index, named in `current`, from stored chunks) | "done"
    phase: str
    files_done: int = 0
    files_total: int = 0
    chunks_done: int = 0
    chunks_total: int = 0
    current: str = ""
    pages_done: int = 0  # while the current file's scanned pages are OCR'd
    pages_total: int = 0


ProgressFn = Callable[[Progress], None]
PREPARING_WORDS = "Preparing the embedding model (the first start takes a minute)…"


@dataclass
class SyncReport:
    scanned: int = 0
    indexed: int = 0  # extracted and (re)written
    unchanged: int = 0
    moved: int = 0
    deleted: int = 0
    failed: int = 0
    chunks_added: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path for display, reason)
    ocr_pages: int = 0  # scanned pages read by OCR in this run
    ocr_cached_pages: int = 0  # scanned pages whose text came from the OCR cache instead
    notes: list[tuple[str, str]] = field(default_factory=list)  # (path, what was left out of an indexed file)


def split_into_chunks(
    extracted: Extracted, tokens: TokenCounter, *, max_tokens: int, overlap: int
) -> list[store.NewChunk]:
    out: list[store.NewChunk] = []
    offset = 0
    for section in extracted.sections:
        for c in chunk_text(section.text, tokens, max_tokens=max_tokens, overlap=overlap):
            shifted = type(c)(c.text, c.start + offset, c.end + offset, c.n_tokens)
            out.append(store.NewChunk(shifted, section.page, section.heading))
        offset += len(section.text) + len(SECTION_JOIN)
    return out


def _links_to_secret(path: Path) -> bool:
    """A link whose own name is harmless ("notes.txt") to a secret file elsewhere in the folder."""
    return path.is_symlink() and is_secret(Path(os.path.realpath(path)))


def _same_stat(state: store.DocState, path: Path) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return (state.size, state.mtime_ns) == (st.st_size, st.st_mtime_ns)


class Indexer:
    """Owns the single writer connection. Not thread-safe: use it from one worker thread."""

    def __init__(self, conn: apsw.Connection, embedder: Embedder, settings: Settings) -> None:
        self.conn = conn
        self.embedder = embedder
        self.settings = settings
        self._worker: ExtractionWorker | None = None
        self._rules: dict[int, IgnoreRules] = {}
        self._rechunk = False

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    @property
    def chunking_key(self) -> str:
        return f"{self.embedder.name}/{self.max_tokens}/{self.settings.chunk_overlap}"

    @property
    def max_tokens(self) -> int:
        return min(self.settings.chunk_tokens, self.embedder.max_tokens)

    @property
    def ocr_limit(self) -> int:
        """The OCR page limit files are read under now; 0 when OCR is off."""
        return self.settings.ocr_max_pages if self.settings.ocr else 0

    def rereads(self, state: store.DocState | None) -> bool:
        """Whether a file read without some of its scanned pages is read again although it did not change:
        OCR is on now with a higher page limit than it was read under (0 when OCR was off)."""
        return bool(state and state.unread_scans and self.ocr_limit > state.ocr_limit)

    def rules_for(self, folder: store.Folder) -> IgnoreRules:
        if folder.id not in self._rules:
            self._rules[folder.id] = IgnoreRules(Path(folder.path), self.settings.ignore_patterns)
        return self._rules[folder.id]

    def forget_rules(self) -> None:
        self._rules.clear()

    # -- phase 1 --------------------------------------------------------------------------------------------

    def sync(
        self,
        folders: Iterable[store.Folder] | None = None,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ) -> SyncReport:
        """Bring the index in line with the folders: new, changed, moved and deleted files."""
        report = SyncReport()
        targets = list(folders) if folders is not None else store.folders(self.conn)
        # Chunks made with other sizes (or another tokenizer) are re-made; until each file's turn comes,
        # its old chunks stay searchable, since every replacement is one transaction.
        recorded = db.get_meta(self.conn, "chunking")
        if recorded is None:  # a new index: what it will hold is made with the current settings
            with self.conn:
                db.set_meta(self.conn, "chunking", self.chunking_key)
            recorded = self.chunking_key
        self._rechunk = recorded != self.chunking_key
        notify = progress or (lambda p: None)
        notify(Progress("scanning"))
        store.mark_ligature_documents(self.conn)  # text read before ligatures were letters: read again
        plan: list[tuple[store.Folder, list[Path], dict[str, store.DocState]]] = []
        for folder in targets:
            root = Path(folder.path)
            if not root.is_dir():
                # An unplugged drive or a deleted folder: keep its index until the user removes it.
                report.failures.append(
                    (store.display_path(folder.path), "Folder is missing or unreadable; its index was kept.")
                )
                continue
            files, too_big = walk(
                root, self.rules_for(folder), max_bytes=int(self.settings.max_file_mb * 1e6), cancel=cancel
            )
            report.failures += self.rules_for(folder).problems  # bad ignore lines: named, then skipped
            known = store.documents_in(self.conn, folder.id)
            report.scanned += len(files) + len(too_big)
            for path, reason in too_big:
                state = known.get(str(path))
                if kind_of(path) is None:
                    continue  # not a document at all (a video, a disk image): nothing to tell
                if state and state.status == "failed" and _same_stat(state, path):
                    report.unchanged += 1  # told before; not re-recorded at every sync
                    continue
                self._fail(folder, path, reason, report)
            present = {str(p) for p in files} | {str(p) for p, _ in too_big}
            changed = []
            for i, path in enumerate(files):
                if cancel and i % 1000 == 0:
                    cancel.checkpoint()
                state = known.get(str(path))
                try:
                    st = path.stat()
                except OSError:
                    continue
                unchanged = state and state.size == st.st_size and state.mtime_ns == st.st_mtime_ns
                if unchanged and not self._rechunk and not self.rereads(state):
                    report.unchanged += 1
                else:
                    changed.append(path)
            missing = {p: s for p, s in known.items() if p not in present}
            plan.append((folder, changed, missing))

        total = sum(len(changed) for _, changed, _ in plan)
        done = 0
        for folder, changed, missing in plan:
            by_hash = {s.content_hash: s for s in missing.values() if s.status == "indexed"}
            for path in changed:
                if cancel:
                    cancel.checkpoint()
                shown = store.display_path(str(path))
                notify(Progress("reading", done, total, current=shown))

                def pages(d: int, t: int, done: int = done, shown: str = shown) -> None:
                    if cancel:
                        cancel.checkpoint()  # between OCR'd pages: a long scan stops at once
                    notify(Progress("reading", done, total, current=shown, pages_done=d, pages_total=t))

                moved_from = self.index_file(folder, path, report, renamed_from=by_hash, on_pages=pages)
                if moved_from is not None:
                    missing.pop(moved_from, None)
                done += 1
            gone = [s.id for s in missing.values()]
            if gone:
                store.delete_documents(self.conn, gone)
                report.deleted += len(gone)
        notify(Progress("reading", done, total))
        if self._rechunk and folders is None:
            with self.conn:
                db.set_meta(self.conn, "chunking", self.chunking_key)
            self._rechunk = False
        return report

    def index_file(
        self,
        folder: store.Folder,
        path: Path,
        report: SyncReport,
        *,
        renamed_from: dict[str, store.DocState] | None = None,
        on_pages: Callable[[int, int], None] | None = None,
    ) -> str | None:
        """Index one file if its content changed. Returns the old path when it turned out to be a move.

        What can be decided from the name and the size is decided before the file is opened: a file of an
        unsupported kind is never read, one over the size limit is never read nor hashed (whichever path
        brought it here: a scan or the watcher).
        """
        kind = kind_of(path)
        try:
            st = path.stat()
        except OSError as err:
            self._fail(folder, path, f"Cannot read the file: {err.strerror or err}", report)
            return None
        if not stat.S_ISREG(st.st_mode):
            return None  # a FIFO or device is never opened: reading one can block forever
        state = store.document(self.conn, str(path))
        if kind == "image" and not self.settings.ocr:
            kind = None  # images are read only by OCR: with it off, they are not documents
        if kind is None or _links_to_secret(path):
            if state:  # it was indexed under rules that allowed it; it is no longer a document
                store.delete_documents(self.conn, [state.id])
            return None
        if st.st_size > self.settings.max_file_mb * 1e6:
            self._fail(folder, path, f"Larger than the {self.settings.max_file_mb:g} MB limit", report, st)
            return None
        try:
            digest = store.file_hash(path)
        except OSError as err:
            self._fail(folder, path, f"Cannot read the file: {err.strerror or err}", report, st)
            return None
        if (
            state
            and state.content_hash == digest
            and state.status == "indexed"
            and not self._rechunk
            and not self.rereads(state)
        ):
            store.touch_document(self.conn, state.id, st.st_size, st.st_mtime_ns)
            report.unchanged += 1
            return None
        # A vanished file's content at a new path is a move, unless this file is due to be read again anyway.
        if renamed_from and digest in renamed_from and not self._rechunk and not self.rereads(state):
            old = renamed_from.pop(digest)
            store.move_document(self.conn, old.id, str(path), folder.id, st.st_size, st.st_mtime_ns)
            report.moved += 1
            return old.path
        try:
            if kind in ("text", "code") and is_binary(path):
                self._fail(folder, path, BINARY_REASON, report, st, digest)
                return None
        except OSError as err:
            self._fail(folder, path, f"Cannot read the file: {err.strerror or err}", report, st)
            return None
        try:
            extracted = storable(self._extractor().extract(path, on_pages))
            if holds_private_key(extracted):
                raise ExtractionError(PRIVATE_KEY_REASON)
            chunks = split_into_chunks(
                extracted, self.embedder, max_tokens=self.max_tokens, overlap=self.settings.chunk_overlap
            )
        except ExtractionError as err:
            self._fail(folder, path, str(err), report, st, digest)
            return None
        store.replace_document(
            self.conn,
            folder_id=folder.id,
            path=str(path),
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            digest=digest,
            kind=extracted.kind,
            title=extracted.title,
            chunks=chunks,
            unread_scans=extracted.unread_scans,
            ocr_limit=self.ocr_limit,
        )
        report.indexed += 1
        report.chunks_added += len(chunks)
        if extracted.ocr is not None:
            report.ocr_pages += extracted.ocr.pages_ocr
            report.ocr_cached_pages += extracted.ocr.pages_cached
            report.notes += [(store.display_path(str(path)), note) for note in extracted.ocr.skipped]
        return None

    def _extractor(self) -> ExtractionWorker:
        if self._worker is None:
            ocr = None
            if self.settings.ocr:
                cache = str(default_cache_dir())
                ocr = OcrOptions(enabled=True, max_pages=self.settings.ocr_max_pages, cache_dir=cache)
            self._worker = ExtractionWorker(timeout_s=self.settings.extract_timeout_s, ocr=ocr)
        return self._worker

    def _fail(
        self,
        folder: store.Folder,
        path: Path,
        reason: str,
        report: SyncReport,
        st: os.stat_result | None = None,
        digest: str = "",
    ) -> None:
        log.info("cannot index %s: %s", store.display_path(str(path)), reason)
        if st is None:
            try:
                st = path.stat()
            except OSError:
                st = None
        store.record_failure(
            self.conn,
            folder_id=folder.id,
            path=str(path),
            size=st.st_size if st else -1,
            mtime_ns=st.st_mtime_ns if st else -1,
            digest=digest,
            reason=reason,
            # A PDF that failed while OCR was off may be a scan: OCR gets its turn when it is turned on.
            unread_scans=int(not self.settings.ocr and kind_of(path) == "pdf"),
            ocr_limit=self.ocr_limit,
        )
        report.failed += 1
        report.failures.append((store.display_path(str(path)), reason))

    # -- phase 2 --------------------------------------------------------------------------------------------

    def prepare_vectors(self) -> bool:
        """Make the vector tables fit the current embedder. True when a model change dropped old vectors."""
        return store.ensure_vector_tables(self.conn, self.embedder.name, self.embedder.dim)

    def embed_pending(
        self,
        *,
        batch_size: int = 256,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
        documents: Sequence[int] | None = None,
    ) -> int:
        """Give every chunk without a vector one (only those of `documents` when given: what one change
        made, not the whole queue). Returns how many chunks got a vector."""
        self.prepare_vectors()
        notify = progress or (lambda p: None)
        total = store.count_pending(self.conn, documents)
        done = 0
        if total and not getattr(self.embedder, "loaded", True):
            # Loading can take a while (the first start converts the model for ONNX Runtime): say so
            # rather than show "0 of N" for that time.
            notify(Progress("preparing", chunks_total=total))
            self.embedder.load()  # type: ignore[attr-defined]
        notify(Progress("embedding", chunks_done=0, chunks_total=total))
        while True:
            if cancel:
                cancel.checkpoint()
            # Each stored batch leaves the queue, so this ends even when files change meanwhile.
            batch = store.pending_chunks(self.conn, batch_size, documents)
            if not batch:
                break
            copies: dict[int, int] = {}
            todo_ids: list[int] = []
            todo_texts: list[str] = []
            first_with_hash: dict[str, int] = {}
            for chunk_id, text, digest in batch:
                # Identical text is embedded once: reuse a stored vector, or one from this very batch.
                source = store.existing_vector_for(self.conn, digest)
                if source is not None:
                    copies[chunk_id] = source
                elif digest in first_with_hash:
                    copies[chunk_id] = first_with_hash[digest]
                else:
                    first_with_hash[digest] = chunk_id
                    todo_ids.append(chunk_id)
                    todo_texts.append(text)
            if todo_texts:
                vectors = self.embedder.embed(todo_texts)
            else:
                vectors = np.zeros((0, self.embedder.dim), dtype=np.float32)
            store.store_vectors(self.conn, todo_ids, vectors, copies)
            done += len(batch)
            total = max(total, done)
            notify(Progress("embedding", chunks_done=done, chunks_total=total))
        if documents is None and vector_index.needs_rebuild(self.conn):
            # The library outgrew its vector index: copy the stored vectors into the one that fits (no
            # re-embedding; resumable; searches use the old index until the copy is complete).
            vector_index.rebuild(
                self.conn,
                self.embedder.dim,
                checkpoint=cancel.checkpoint if cancel else lambda: None,
                progress=_building(notify, "vector index"),
            )
        if documents is None and not keyword_index.ready(self.conn):
            # An index made before keyword_index: fill it in (resumable; FTS5 answers keyword searches
            # until it is complete).
            keyword_index.catch_up(
                self.conn,
                checkpoint=cancel.checkpoint if cancel else lambda: None,
                progress=_building(notify, "keyword index"),
            )
        return done


def _building(notify: ProgressFn, what: str) -> Callable[[int, int], None]:
    """Progress of a big library's index being built from stored chunks (`what`: which index)."""
    return lambda d, t: notify(Progress("building", chunks_done=d, chunks_total=t, current=what))


def index_all(
    indexer: Indexer,
    folders: Iterable[store.Folder] | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> SyncReport:
    """Both phases, one after the other."""
    report = indexer.sync(folders, progress=progress, cancel=cancel)
    indexer.embed_pending(progress=progress, cancel=cancel)
    if progress:
        progress(Progress("done"))
    return report
