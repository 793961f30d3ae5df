"""The small typed API that the CLI and the GUI share: a library of folders and its index."""

from __future__ import annotations

import os
from pathlib import Path

from . import db, paths, store
from .cancel import CancelToken
from .embedding import Embedder, SentenceTransformerEmbedder
from .errors import AlmanacError
from .indexer import Indexer, ProgressFn, SyncReport, index_all
from .search import FusionConfig, Searcher
from .settings import Settings


class Library:
    """Owns the writer connection. Create it, and call its writing methods, from one thread only."""

    def __init__(
        self,
        db_path: Path | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.db_path = Path(db_path or paths.db_path())
        self.settings = settings or Settings.load()
        self.embedder = embedder or SentenceTransformerEmbedder(self.settings.embedding_model)
        self.conn = db.open_writer(self.db_path)
        self.indexer = Indexer(self.conn, self.embedder, self.settings)

    def close(self) -> None:
        self.indexer.close()
        self.conn.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- folders -------------------------------------------------------------------------------------------

    def folders(self) -> list[store.Folder]:
        return store.folders(self.conn)

    def add_folder(self, folder: str | os.PathLike[str]) -> store.Folder:
        path = Path(folder).expanduser().resolve()
        if not path.exists():
            raise AlmanacError(f"Folder not found: {path}")
        if not path.is_dir():
            raise AlmanacError(f"Not a folder: {path}")
        if not os.access(path, os.R_OK | os.X_OK):
            raise AlmanacError(f"Almanac cannot read the folder {path}: check its permissions.")
        for f in self.folders():
            if path == Path(f.path) or Path(f.path) in path.parents:
                return f  # already covered by a library folder
        folder_id = store.add_folder(self.conn, str(path))
        self.indexer.forget_rules()
        return store.Folder(folder_id, str(path))

    def remove_folder(self, folder: str | os.PathLike[str]) -> None:
        path = str(Path(folder).expanduser().resolve())
        for f in self.folders():
            if f.path == path:
                store.remove_folder(self.conn, f.id)
                self.indexer.forget_rules()
                return
        raise AlmanacError(f"{path} is not in the library.")

    # -- indexing ------------------------------------------------------------------------------------------

    def index(
        self,
        folders: list[store.Folder] | None = None,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ) -> SyncReport:
        with db.translate_errors(self.db_path):
            return index_all(self.indexer, folders, progress=progress, cancel=cancel)

    def status(self) -> store.Status:
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
