"""Invariants of a healthy index, checked after every kind of change (and after a kill -9)."""

from __future__ import annotations

import numpy as np
from almanac.core import keyword_index, vector_index


def problems(conn) -> list[str]:
    out = []
    chunk_ids = {r[0] for r in conn.execute("SELECT id FROM chunks")}
    fts_ids = {r[0] for r in conn.execute("SELECT rowid FROM chunks_fts")}
    if chunk_ids != fts_ids:
        out.append(f"FTS out of step: {len(fts_ids - chunk_ids)} orphans, {len(chunk_ids - fts_ids)} missing")
    active = vector_index.active_table(conn)
    if active:
        embedded = {r[0] for r in conn.execute("SELECT id FROM chunks WHERE embedded = 1")}
        dead = set()  # deleted chunks whose vectors stay in a DiskANN graph until its next rebuild
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'vec_deleted'").fetchone():
            dead = {r[0] for r in conn.execute("SELECT id FROM vec_deleted")}
        if dead & embedded:
            out.append(f"{len(dead & embedded)} live chunks marked dead")
        for table in (active,):
            vec_ids = {r[0] for r in conn.execute(f"SELECT rowid FROM {table}")} - dead
            if vec_ids != embedded:
                out.append(f"{table} out of step: {len(vec_ids - embedded)} orphans, {len(embedded - vec_ids)} missing")
        target = vector_index.rebuild_target(conn)  # a rebuild under way holds every embedded id <= its cursor
        if target:
            copied = {i for i in embedded if i <= target[2]}
            vec_ids = {r[0] for r in conn.execute(f"SELECT rowid FROM {target[0]}")} - dead
            if vec_ids != copied:
                out.append(f"rebuild of {target[0]} out of step: {len(vec_ids ^ copied)} ids differ")
    orphans = conn.execute(
        "SELECT count(*) FROM chunks WHERE document_id NOT IN (SELECT id FROM documents)"
    ).fetchone()[0]
    if orphans:
        out.append(f"{orphans} chunks without a document")
    dup = conn.execute("SELECT count(*) - count(DISTINCT path) FROM documents").fetchone()[0]
    if dup:
        out.append(f"{dup} documents indexed twice")
    failed_with_chunks = conn.execute(
        "SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.document_id WHERE d.status = 'failed'"
    ).fetchone()[0]
    if failed_with_chunks:
        out.append(f"{failed_with_chunks} chunks of failed documents")
    if keyword_index.ready(conn):  # every chunk's postings, in the blocks (less those masked) or pending
        held = set()
        for (blob,) in conn.execute("SELECT ids FROM kw_blocks"):
            held |= set(np.frombuffer(blob, np.uint32).tolist())
        held -= {r[0] for r in conn.execute("SELECT chunk_id FROM kw_removed")}
        held |= {r[0] for r in conn.execute("SELECT chunk_id FROM kw_pending")}
        if held != chunk_ids:
            out.append(f"keyword index out of step: {len(held - chunk_ids)} orphans, {len(chunk_ids - held)} missing")
    return out
