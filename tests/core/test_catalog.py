"""The model catalog: its data file, installing through a mirror, and the RAM check."""

from __future__ import annotations

from almanac.core import catalog
from servers import file_server
from test_download import gguf  # noqa: F401 - the served copy of the bundled model


def test_install_through_a_mirror_records_the_model(gguf, monkeypatch):  # noqa: F811
    folder, path, size, sha, _ = gguf
    model = catalog.CatalogModel(
        id="test-model", name="Test", params="135M", file="model.gguf", url="https://example.invalid/x",
        size_bytes=size, approx_size_mb=size // 1_000_000, ram_gb=0.5, context_length=2048,
        license="Apache-2.0", sha256=sha, md5=None, verified=True, source="test",
    )
    with file_server(folder) as (url, state):
        monkeypatch.setenv(catalog.MIRROR_ENV, url)
        entry = catalog.install(model)
    assert entry.sha256 == sha and entry.checked_against == "sha256"
    installed = catalog.installed_models()
    assert installed["test-model"].path == str(catalog.models_dir() / "model.gguf")
    assert catalog.BUNDLED_ID in installed
    assert catalog.remove("test-model") and "test-model" not in catalog.installed_models()
    assert not (catalog.models_dir() / "model.gguf").exists()


def test_catalog_file_is_well_formed():
    models = catalog.load_catalog()
    assert {m.id for m in models} >= {"smollm2-360m", "qwen2.5-0.5b", "llama-3.2-1b", "phi-3.5-mini"}
    for m in models:
        assert m.url.startswith("https://huggingface.co/") and m.url.endswith("/" + m.file)
        if m.verified:  # a verified entry has what the download checks against
            assert m.size_bytes and (m.sha256 or m.md5)
        assert m.sha256 is None or len(m.sha256) == 64
    assert catalog.find(models, "LLAMA-3.2-1B").file == "Llama-3.2-1B-Instruct-Q4_0.gguf"


def test_ram_warning_for_a_model_bigger_than_the_machine():
    models = catalog.load_catalog()
    huge = catalog.CatalogModel(**{**models[0].to_json(), "ram_gb": 100_000.0})
    assert "needs about" in catalog.ram_warning(huge)
    tiny = catalog.CatalogModel(**{**models[0].to_json(), "ram_gb": 0.001})
    assert catalog.ram_warning(tiny) is None
