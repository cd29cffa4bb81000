"""Whether matching by meaning is on in this process: the model, loaded once, or why it is off.

Every entry point asks ``shared()`` (one per process, so ``paperboy run``'s scheduler and web
app load the model once and warn once); tests build their own ``SentenceModel`` with a loader.
Matching never depends on the answer: without a model it is lexical, and a send never fails.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from pipeline import config
from pipeline.embedding import Embedder, ModelUnavailable

log = logging.getLogger("paperboy.meaning")

Loader = Callable[[], Embedder]

# Set to a folder to load the model from there instead of the packaged one (an empty folder
# makes the model unavailable: how the lexical fallback is exercised end to end).
MODEL_DIR_ENV = "PAPERBOY_MODEL_DIR"


def packaged_model() -> Embedder:
    """The packaged model (``pipeline.embedding.model``); ModelUnavailable when it cannot run."""
    folder = os.environ.get(MODEL_DIR_ENV)
    try:
        # Imported by name: onnxruntime and tokenizers load only when meaning is wanted.
        module = importlib.import_module("pipeline.embedding.model")
    except ImportError as e:
        raise ModelUnavailable(f"the model runner cannot be imported ({e})") from e
    load: Callable[..., Embedder] = module.load_embedder
    if folder:
        return load(Path(folder))
    return load()


class SentenceModel:
    """The sentence model of one process: loaded on first use, at most once; if it cannot be,
    the reason is kept, logged once, and shown by ``status``."""

    def __init__(self, loader: Loader = packaged_model) -> None:
        self._loader = loader
        self._lock = threading.Lock()
        self._model: Embedder | None = None
        self._failure: str | None = None
        self._tried = False
        self._said_off = False

    def get(self, settings: config.Meaning) -> Embedder | None:
        """The model when meaning is on and it loads (loading it now if need be), else None."""
        if not settings.enabled:
            if not self._said_off:
                self._said_off = True
                log.warning("matching by meaning is off (meaning.enabled = false): words only")
            return None
        with self._lock:
            if not self._tried:
                self._tried = True
                try:
                    self._model = self._loader()
                except ModelUnavailable as e:
                    self._failure = str(e) or e.__class__.__name__
                    log.warning(
                        "matching by meaning is unavailable, matching by words only: %s",
                        self._failure,
                    )
        return self._model

    def loaded(self, settings: config.Meaning) -> Embedder | None:
        """The model if meaning is on and it is loaded already; never loads it."""
        return self._model if settings.enabled else None

    def status(self, settings: config.Meaning) -> str:
        """``on``, ``off (config)``, ``unavailable: <reason>`` or ``not loaded yet``."""
        if not settings.enabled:
            return "off (config)"
        if self._failure is not None:
            return f"unavailable: {self._failure}"
        return "on" if self._model is not None else "not loaded yet"


_shared: SentenceModel | None = None
_shared_lock = threading.Lock()


def shared() -> SentenceModel:
    """This process's sentence model (the packaged one)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SentenceModel()
        return _shared
