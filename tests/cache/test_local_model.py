"""The semantic cache's local model is the one we pinned: the model and tokenizer files are
checked against SHA-256 digests at load, a file that differs is refused (its path named, the
semantic cache then misses), and every package they come from is a declared dependency that
pulls no PyTorch."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest

from gatewayz.cache import embed_local
from gatewayz.cache.embed_local import EmbedderUnavailable, LocalEmbedder
from gatewayz.cache.response_cache import ResponseCache
from gatewayz.cache.response_store import MemoryResponseStore
from gatewayz.cache.semantic_index import MemorySemanticIndex
from gatewayz.canonical.types import ChatRequest, Message
from gatewayz.security.auth import Principal

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "What is the capital of France?"
HEAVY = {"torch", "sentence-transformers", "transformers"}


def _copies(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the installed model and tokenizer files in a directory of the test's own."""
    model, tokenizer = embed_local.packaged_files()
    model_copy, tokenizer_copy = tmp_path / "model.onnx", tmp_path / "tokenizer.json"
    shutil.copyfile(model, model_copy)
    shutil.copyfile(tokenizer, tokenizer_copy)
    return model_copy, tokenizer_copy


def test_the_installed_files_load_and_untouched_copies_load_too(tmp_path: Path) -> None:
    installed = LocalEmbedder().embed_now(PROMPT)
    assert installed.shape == (embed_local.DIMENSIONS,)
    # The digests pin the contents, not the place: the same bytes elsewhere are accepted.
    copied = LocalEmbedder(files=_copies(tmp_path)).embed_now(PROMPT)
    assert np.array_equal(installed, copied)


async def test_a_tampered_model_is_refused_with_its_path_named(tmp_path: Path) -> None:
    model, tokenizer = _copies(tmp_path)
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight: still a model onnxruntime would run
    model.write_bytes(bytes(data))
    embedder = LocalEmbedder(files=(model, tokenizer))
    with pytest.raises(EmbedderUnavailable) as info:
        embedder.embed_now(PROMPT)
    assert str(model) in str(info.value)
    assert "SHA-256" in str(info.value)
    # The semantic cache answers a miss, as it does when the model is missing.
    cache = ResponseCache(
        MemoryResponseStore(10), index=MemorySemanticIndex(10, 10), embedder=embedder
    )
    principal = Principal("key_1", "usr_1", "live", "dev", "dev", None, {})
    plan = cache.plan(
        principal, ChatRequest("m", [Message("user", PROMPT)]), "openai/m", None, {"semantic": True}
    )
    assert plan is not None and plan.bucket is not None
    assert await cache.lookup(plan, {"openai"}) is None
    assert cache.stats.errors == 1


def test_a_tampered_tokenizer_that_is_still_valid_json_is_refused(tmp_path: Path) -> None:
    model, tokenizer = _copies(tmp_path)
    spec = json.loads(tokenizer.read_text())
    vocab = spec["model"]["vocab"]
    vocab["paris"], vocab["london"] = vocab["london"], vocab["paris"]  # a silent swap
    tokenizer.write_text(json.dumps(spec))
    with pytest.raises(EmbedderUnavailable) as info:
        LocalEmbedder(files=(model, tokenizer)).embed_now(PROMPT)
    assert str(tokenizer) in str(info.value)


def _requirement_name(spec: str) -> str:
    name = re.split(r"[\s;<>=!~\[(]", spec.strip(), maxsplit=1)[0]
    return name.lower().replace("_", "-")


def test_every_package_the_local_model_needs_is_declared_and_none_pulls_pytorch() -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        declared = {_requirement_name(d) for d in tomllib.load(f)["project"]["dependencies"]}
    file_packages = {pin.package for pin in embed_local.pinned_files().values()}
    needed = {"numpy", "onnxruntime", "tokenizers", *file_packages}
    assert needed <= declared, needed - declared
    for package in file_packages:
        requires = importlib.metadata.requires(package) or []
        unconditional = {_requirement_name(r) for r in requires if "extra ==" not in r}
        assert not unconditional & HEAVY, (package, unconditional)
    # Installed like every other dependency: none of them is put in by hand without its
    # dependencies (the Makefile does that for one test-only client library, instructor).
    for line in (ROOT / "Makefile").read_text().splitlines():
        if "--no-deps" in line:
            named = {_requirement_name(w) for w in line.split() if not w.startswith(("-", "$"))}
            assert not named & needed, line
