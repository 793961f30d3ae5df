"""A child process for the kill test: adds one folder and indexes it with the model-free hash embedder.

Run as `python index_child.py DB FOLDER`. The hash embedder answers instantly, so each embedding batch also
sleeps a little, standing in for the real model's time: kills then land in the embedding phase too. (The real
model would spend most of 20 runs loading torch, which is not what this test is about.)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from almanac.core.embedding import HashEmbedder
from almanac.core.library import Library
from almanac.core.settings import Settings

SETTINGS = Settings(chunk_tokens=40, chunk_overlap=5)


class SlowHashEmbedder(HashEmbedder):
    def embed(self, texts):
        time.sleep(0.005 * len(texts))  # about what MiniLM takes per chunk on a laptop CPU
        return super().embed(texts)


def main() -> int:
    db, folder = Path(sys.argv[1]), sys.argv[2]
    with Library(db, settings=SETTINGS, embedder=SlowHashEmbedder()) as lib:
        lib.add_folder(folder)
        print("indexing", flush=True)  # the parent times its kill from here: start-up is not what is tested
        report = lib.index()
    print(f"indexed {report.indexed} of {report.scanned}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
