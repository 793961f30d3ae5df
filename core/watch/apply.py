"""Applying ready changes to the index, on the thread that owns the Library (the one writer)."""

from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .. import db, paths, store
from ..cancel import CancelToken
from ..ignore import IGNORE_FILE, IgnoreRules, walk
from ..indexer import SyncReport

if TYPE_CHECKING:
    from ..library import Library

from .changes import AppliedChange, AppliedReport, ChangeSet, FolderChanges

log = logging.getLogger(__name__)

EMBED_BATCH = 32  # chunks per embedding batch for a change's own chunks (each batch is a cancel point)

# --- applying (writer thread) -------------------------------------------------------------------------------


def apply_changes(lib: Library, changes: ChangeSet, *, cancel: CancelToken | None = None) -> AppliedReport:
    """Bring the index in line with the ready changes. Writer thread only; each store write is one
    transaction, so readers never see half a document. Does not embed (see `FolderWatcher.apply_ready`)."""
    report = AppliedReport()
    if not changes:
        return report
    live = {f.id for f in lib.folders()}  # a folder removed meanwhile is skipped
    todo = [fc for fc in changes.folders if fc.folder.id in live]
    since = time.time()
    with db.translate_errors(lib.db_path), report.timings.stage("apply"):
        for fc in todo:
            if fc.rescan:
                _rescan(lib, fc, report, cancel)
        files = [fc for fc in todo if not fc.rescan]
        if files:
            _apply_paths(lib, files, report, cancel)
        if report.totals.chunks_added:
            report.documents = store.documents_indexed_since(lib.conn, since)
    return report


def embed_documents(lib: Library, documents: list[int], *, cancel: CancelToken | None = None) -> int:
    """Vectors for the chunks of `documents` that have none: what a change just made, in small batches so
    a cancel (the app closing) is seen within a fraction of a second."""
    if not documents:
        return 0
    return lib.embed_pending(documents=documents, batch_size=EMBED_BATCH, cancel=cancel)


def _rescan(lib: Library, fc: FolderChanges, report: AppliedReport, cancel: CancelToken | None) -> None:
    if fc.forget_rules:
        lib.indexer.forget_rules()
    r = lib.indexer.sync([fc.folder], cancel=cancel)
    _add(report.totals, r)
    done = [
        f"{n} {what}"
        for n, what in (
            (r.indexed, "indexed"),
            (r.moved, "moved"),
            (r.deleted, "removed"),
            (r.failed, "failed"),
        )
        if n
    ]
    detail = f"{fc.rescan}: {', '.join(done) or 'no change'}"
    report.changes.append(AppliedChange(fc.folder.path, "rescanned", fc.folder.path, detail=detail))


def _apply_paths(
    lib: Library, todo: list[FolderChanges], report: AppliedReport, cancel: CancelToken | None
) -> None:
    conn, indexer = lib.conn, lib.indexer
    changes = report.changes

    # 1. Moves, in order: the path changes, chunks and vectors stay. Whether the content changed meanwhile is
    #    checked below like any other path (both ends of a move are also pending paths).
    for fc in todo:
        for mv in fc.moves:
            if mv.is_dir:
                n = store.move_documents_under(conn, mv.src, mv.dest, fc.folder.id)
                if n:
                    detail = f"{n} file{'s' if n != 1 else ''}"
                    changes.append(AppliedChange(fc.folder.path, "moved", mv.src, mv.dest, detail))
                    report.totals.moved += n
            else:
                doc = store.document(conn, mv.src)
                if doc is not None:
                    store.move_document(conn, doc.id, mv.dest, fc.folder.id, doc.size, doc.mtime_ns)
                    changes.append(AppliedChange(fc.folder.path, "moved", mv.src, mv.dest))
                    report.totals.moved += 1

    # 2. Look at every path as it is now: a file to (maybe) index, a folder to reconcile, or gone.
    files: dict[str, store.Folder] = {}
    gone: dict[str, tuple[store.DocState, store.Folder, str]] = {}  # path -> (doc, folder, gone folder path)
    for fc in todo:
        rules = indexer.rules_for(fc.folder)
        root_real = os.path.realpath(fc.folder.path)
        for path in fc.paths:
            what = _look(Path(path), rules, root_real)
            if what == "file":
                files.setdefault(path, fc.folder)
            elif what == "dir":
                _scan_dir(lib, fc.folder, Path(path), rules, root_real, files, gone, cancel)
            else:
                doc = store.document(conn, path)
                if doc is not None:
                    gone[path] = (doc, fc.folder, "")
                for p, d in store.documents_under(conn, path).items():
                    gone[p] = (d, fc.folder, path)

    # 3. Index what changed. A gone document with the same content is a move the events did not pair up
    #    (across folders, or a delete and a create): it keeps its chunks and vectors.
    renamed_from = {d.content_hash: d for d, _, _ in gone.values() if d.status == "indexed"}
    for path, folder in sorted(files.items()):
        if cancel:
            cancel.checkpoint()
        p = Path(path)
        before = store.document(conn, path)
        if before is not None and _same_stat(before, p):
            continue  # unchanged (a moved file, a chmod, an event for nothing)
        r = SyncReport()
        moved_from = indexer.index_file(folder, p, r, renamed_from=renamed_from)
        _add(report.totals, r)
        if moved_from is not None:
            gone.pop(moved_from, None)
            changes.append(AppliedChange(folder.path, "moved", moved_from, path))
        elif r.indexed:
            action = "updated" if before is not None else "added"
            changes.append(AppliedChange(folder.path, action, path, detail=f"+{r.chunks_added} chunks"))
        elif r.failed:
            changes.append(AppliedChange(folder.path, "failed", path, detail=r.failures[-1][1]))
        elif before is not None and store.document(conn, path) is None:
            changes.append(AppliedChange(folder.path, "removed", path, detail="not a document any more"))

    # 4. Remove what is gone, in one transaction.
    if gone:
        store.delete_documents(conn, [d.id for d, _, _ in gone.values()])
        report.totals.deleted += len(gone)
        by_dir: dict[tuple[str, str], int] = {}
        for path, (_, folder, under) in sorted(gone.items()):
            if under:
                by_dir[(folder.path, under)] = by_dir.get((folder.path, under), 0) + 1
            else:
                changes.append(AppliedChange(folder.path, "removed", path))
        for (folder_path, under), n in by_dir.items():
            detail = f"{n} file{'s' if n != 1 else ''}"
            changes.append(AppliedChange(folder_path, "removed", under, detail=detail))


def _look(p: Path, rules: IgnoreRules, root_real: str) -> str:
    """What a path is now: "file", "dir", or "gone" (missing, ignored, or nothing a scan would index)."""
    try:
        st = p.lstat()
    except OSError:
        return "gone"
    is_dir = stat.S_ISDIR(st.st_mode)
    if p.name == IGNORE_FILE or rules.ignored(p, is_dir=is_dir):
        return "gone"
    if is_dir:
        return "dir"
    if stat.S_ISLNK(st.st_mode):  # as the scan does: only links to files inside the folder
        target = os.path.realpath(p)
        inside = paths.is_within(target, root_real)
        return "file" if inside and os.path.isfile(target) else "gone"
    return "file" if stat.S_ISREG(st.st_mode) else "gone"


def _scan_dir(
    lib: Library,
    folder: store.Folder,
    directory: Path,
    rules: IgnoreRules,
    root_real: str,
    files: dict[str, store.Folder],
    gone: dict[str, tuple[store.DocState, store.Folder, str]],
    cancel: CancelToken | None,
) -> None:
    """A folder appeared or moved in: the same reconciliation as a scan, for that sub-tree only."""
    found, too_big = walk(directory, rules, max_bytes=int(lib.settings.max_file_mb * 1e6), cancel=cancel)
    present = {str(p) for p in found} | {str(p) for p, _ in too_big}
    for path in present:
        files.setdefault(path, folder)  # index_file records the too-big ones as failed
    for path, doc in store.documents_under(lib.conn, str(directory)).items():
        if path in present:
            continue
        if _look(Path(path), rules, root_real) == "file":  # e.g. a link to a file elsewhere in the folder
            files.setdefault(path, folder)
        else:
            gone[path] = (doc, folder, str(directory))


def _same_stat(doc: store.DocState, p: Path) -> bool:
    try:
        st = p.stat()
    except OSError:
        return False
    return (doc.size, doc.mtime_ns) == (st.st_size, st.st_mtime_ns)


def _add(total: SyncReport, r: SyncReport) -> None:
    total.scanned += r.scanned
    total.indexed += r.indexed
    total.unchanged += r.unchanged
    total.moved += r.moved
    total.deleted += r.deleted
    total.failed += r.failed
    total.chunks_added += r.chunks_added
    total.failures += r.failures
