"""The small typed API that the CLI and the GUI share: a library of folders and its index."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from . import db, paths, store
from .cancel import CancelToken
from .embedding import Embedder, SentenceTransformerEmbedder
from .errors import AlmanacError
from .indexer import Indexer, ProgressFn, SyncReport, index_all
from .search import FusionConfig, Searcher
from .settings import Settings
from .writer_lock import WriterLock


class Library:
    """Owns the writer connection and the index's writer lock. Create it, and call its writing methods, from
    one thread only.

    Opening a second writer on the same index (another app window, `almanac index` while the app runs)
    raises `IndexInUseError`, which names the first by its `owner` ("almanac index", "the Almanac app").
    With `read_only=True` nothing is locked and nothing can be written: for status, search and ask beside a
    running writer.

    Every method raises `AlmanacError`s for what the user can act on (a locked, full, read-only or damaged
    database included); anything else is a bug.
    """

    def __init__(
        self,
        db_path: Path | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        read_only: bool = False,
        owner: str = "",
    ) -> None:
        self.db_path = Path(db_path or paths.db_path())
        self.settings = settings or Settings.load()
        self.read_only = read_only
        self._lock: WriterLock | None = None
        if read_only:
            self.conn = db.open_reader(self.db_path)
        else:
            lock = WriterLock(self.db_path, owner)
            lock.acquire()
            try:
                self.conn = db.open_writer(self.db_path)
            except BaseException:
                lock.release()
                raise
            self._lock = lock
        self.embedder = embedder or SentenceTransformerEmbedder(self.settings.embedding_model)
        self.indexer = Indexer(self.conn, self.embedder, self.settings)

    def close(self) -> None:
        try:
            self.indexer.close()
            self.conn.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- folders -------------------------------------------------------------------------------------------

    def folders(self) -> list[store.Folder]:
        with db.translate_errors(self.db_path):
            return store.folders(self.conn)

    def add_folder(self, folder: str | os.PathLike[str]) -> store.Folder:
        self._check_writable()
        path = Path(folder).expanduser().resolve()
        if not path.exists():
            raise AlmanacError(f"Folder not found: {path}")
        if not path.is_dir():
            raise AlmanacError(f"Not a folder: {path}")
        if not os.access(path, os.R_OK | os.X_OK):
            raise AlmanacError(f"Almanac cannot read the folder {path}: check its permissions.")
        for f in self.folders():
            if paths.is_within(path, f.path):
                return f  # already covered by a library folder
        with db.translate_errors(self.db_path):
            folder_id = store.add_folder(self.conn, str(path))
        self.indexer.forget_rules()
        return store.Folder(folder_id, str(path))

    def remove_folder(self, folder: str | os.PathLike[str]) -> None:
        self._check_writable()
        path = str(Path(folder).expanduser().resolve())
        for f in self.folders():
            if f.path == path:
                with db.translate_errors(self.db_path):
                    store.remove_folder(self.conn, f.id)
                self.indexer.forget_rules()
                return
        raise AlmanacError(f"{path} is not in the library.")

    def _check_writable(self) -> None:
        if self.read_only:
            raise AlmanacError(f"The library in {self.db_path.parent} is open read-only here.")

    # -- indexing ------------------------------------------------------------------------------------------

    def index(
        self,
        folders: list[store.Folder] | None = None,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ) -> SyncReport:
        self._check_writable()
        with db.translate_errors(self.db_path):
            return index_all(self.indexer, folders, progress=progress, cancel=cancel)

    def embed_pending(
        self,
        *,
        documents: Sequence[int] | None = None,
        batch_size: int = 256,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ) -> int:
        """Vectors for chunks that have none (only those of `documents` when given); returns how many."""
        self._check_writable()
        with db.translate_errors(self.db_path):
            return self.indexer.embed_pending(
                documents=documents, batch_size=batch_size, progress=progress, cancel=cancel
            )

    def ignore_problems(self) -> list[tuple[str, str]]:
        """(ignore file, what is wrong with a line of it), for lines that were skipped as not valid."""
        return [p for f in self.folders() for p in self.indexer.rules_for(f).problems]

    def status(self) -> store.Status:
        with db.translate_errors(self.db_path):
            return store.status(self.conn, self.db_path)

    # -- queries -------------------------------------------------------------------------------------------

    def searcher(self) -> Searcher:
        """A new reader for the calling thread."""
        return open_searcher(self.db_path, self.embedder, self.settings)


def open_searcher(db_path: Path, embedder: Embedder, settings: Settings) -> Searcher:
    fusion = FusionConfig(
        rrf_k=settings.rrf_k, keyword_weight=settings.keyword_weight, vector_weight=settings.vector_weight
    )
    return Searcher(db_path, embedder, fusion=fusion)
