"""Which files we can read, decided by name; and a quick binary sniff for the text kinds."""

from __future__ import annotations

import os
from pathlib import Path

from .text import SNIFF_BYTES, has_bom, sample_is_binary, sample_offsets

_TEXT_EXTENSIONS = {".txt", ".text", ".rst", ".log", ".org", ".tex", ".adoc", ".asciidoc", ".nfo", ".me"}
_CODE_EXTENSIONS = {
    # programming languages
    ".py", ".pyi", ".pyw", ".js", ".mjs", ".cjs", ".ts", ".mts", ".cts", ".tsx", ".jsx", ".vue", ".svelte",
    ".c", ".h", ".cpp", ".hpp", ".cc", ".hh", ".cxx", ".hxx", ".ino", ".rs", ".go", ".java", ".kt", ".kts",
    ".rb", ".php", ".pl", ".pm", ".sh", ".bash", ".zsh", ".fish", ".ps1", ".psm1", ".bat", ".cmd",
    ".lua", ".sql", ".r", ".jl", ".swift", ".scala", ".sc", ".cs", ".fs", ".fsx", ".vb", ".m", ".mm",
    ".dart", ".groovy", ".gradle", ".clj", ".cljs", ".edn", ".el", ".lisp", ".scm", ".rkt", ".hs",
    ".ml", ".mli", ".ex", ".exs", ".erl", ".hrl", ".elm", ".nim", ".zig", ".d", ".v", ".sv", ".vhd",
    ".f", ".f90", ".f95", ".pas", ".asm", ".s", ".cmake", ".mk", ".proto", ".graphql", ".gql",
    ".tf", ".hcl", ".nix", ".sol", ".awk", ".sed", ".vim", ".ipynb",
    # config, data and markup that is read as source
    ".json", ".jsonc", ".json5", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".properties",
    ".css", ".scss", ".sass", ".less", ".xml", ".xsd", ".xsl", ".svg", ".csv", ".tsv", ".diff", ".patch",
    ".bib", ".dockerfile", ".j2", ".jinja", ".tmpl", ".mustache", ".hbs",
}  # fmt: skip
# Extensionless files that are conventionally text.
_TEXT_NAMES = {
    "readme", "license", "licence", "copying", "authors", "contributors", "changelog", "changes", "news",
    "history", "install", "todo", "notice", "makefile", "gnumakefile", "dockerfile", "containerfile",
    "vagrantfile", "gemfile", "rakefile", "procfile", "jenkinsfile", "justfile",
}  # fmt: skip
_IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".webp"}
_KINDS = {
    ".pdf": "pdf",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".docx": "docx",
    **dict.fromkeys(_IMAGE_EXTENSIONS, "image"),  # read by OCR (ocr.py)
    **dict.fromkeys(_TEXT_EXTENSIONS, "text"),
    **dict.fromkeys(_CODE_EXTENSIONS, "code"),
}


def kind_of(path: Path) -> str | None:
    """The extractor kind for a file name ("pdf", "markdown", "text", "html", "docx", "code", "image"), or
    None."""
    suffix = path.suffix.lower()
    if suffix:
        return _KINDS.get(suffix)
    return "text" if path.name.lower() in _TEXT_NAMES else None


def is_binary(path: Path) -> bool:
    """True when the start, middle or end of the file (8 KiB each) is not text; never reads more."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
        if has_bom(head):
            return False  # UTF-16/32 text is full of NUL bytes
        for at in sample_offsets(os.fstat(fh.fileno()).st_size):
            fh.seek(at)
            if sample_is_binary(fh.read(SNIFF_BYTES), at_start=at == 0):
                return True
    return False
