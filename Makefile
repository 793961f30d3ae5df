# The two set-up commands in the README: `make run` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean package package-test

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# CPU build of torch first, so no resolver pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: $(STAMP)
	$(PY) -m almanac.app.system_check
	$(VENV)/bin/almanac gui

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) build *.egg-info

# ---- Installer build (packaging/README.md) -----------------------------------------------------------------
# `make package`: dist/almanac/ (PyInstaller, one folder) and dist/almanac-VERSION-linux-x86_64.tar.gz, built in
# a venv of its own (PKG_VENV) so the dev install above stays as it is. `make package-test` smoke-tests it.
# llama-cpp-python is built portable there: generic code plus one CPU library per x86 generation, the best one
# picked at run time (core/llm.py loads it), where the dev install compiles for this machine's CPU only.
# pip's wheel cache ignores CMAKE_ARGS, so that wheel is built once (~45 min on 2 cores) into a folder keyed by
# the version and the flags, and reused from there.
PKG_VENV ?= build/package-venv
PKG_PY := $(PKG_VENV)/bin/python
PKG_STAMP := $(PKG_VENV)/.installed
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
LLAMA_VERSION := 0.3.36
LLAMA_PORTABLE_ARGS := -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON \
	-DGGML_BACKEND_DIR:STRING=llama_cpp/lib
LLAMA_WHEELS := $(HOME)/.cache/almanac-build/wheels/llama-cpp-python-$(LLAMA_VERSION)-$(shell \
	printf '%s' '$(LLAMA_PORTABLE_ARGS)' | sha256sum | cut -c1-12)
LLAMA_WHEEL := $(LLAMA_WHEELS)/.built

$(LLAMA_WHEEL):
	rm -rf $(LLAMA_WHEELS)
	CMAKE_ARGS="$(LLAMA_PORTABLE_ARGS)" nice -n 10 python3 -m pip wheel --no-deps --no-cache-dir \
		--no-binary llama-cpp-python -w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_VERSION)
	python3 -m zipfile -l $(LLAMA_WHEELS)/llama_cpp_python-*.whl | grep -q libggml-cpu-haswell  # variants inside
	touch $@

$(PKG_STAMP): pyproject.toml $(LLAMA_WHEEL)
	test -x $(PKG_PY) || python3 -m venv $(PKG_VENV)
	$(PKG_PY) -m pip install --quiet --upgrade pip
	$(PKG_PY) -m pip install --quiet torch==2.13.0
	$(PKG_PY) -m pip install --quiet --force-reinstall --no-deps $(LLAMA_WHEELS)/llama_cpp_python-*.whl
	$(PKG_PY) -m pip install --quiet '.[package]'
	touch $@

package: $(PKG_STAMP)
	# This tree as it is now, installed (not editable: PyInstaller follows installed packages).
	$(PKG_PY) -m pip install --quiet --no-deps --force-reinstall .
	nice -n 10 $(PKG_PY) -m PyInstaller --noconfirm --log-level WARN --distpath dist \
		--workpath build/pyinstaller packaging/almanac.spec
	cp packaging/install.sh dist/almanac/
	tar -C dist -czf dist/almanac-$(VERSION)-linux-x86_64.tar.gz almanac
	du -sh dist/almanac dist/almanac-$(VERSION)-linux-x86_64.tar.gz

package-test:
	python3 packaging/smoke_test.py dist/almanac
