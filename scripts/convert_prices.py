"""Convert litellm's model price facts into Gatewayz's own price book (run once, output committed).

    .venv/bin/python scripts/convert_prices.py [SOURCE] [--effective-from YYYY-MM-DD]

Reads SOURCE (default ../shared/data/model_prices.json) and writes
src/gatewayz/billing/prices.toml and, for the model catalog, the capabilities of the same rows
to src/gatewayz/catalog/capabilities.toml (next to `--out` when that is given). The gateway
never reads SOURCE at run time.

Conversion rules:
- Only chat/completion models of providers Gatewayz knows (LITELLM_PROVIDERS), with both an
  input and an output price, not both zero (a $0 row is a missing price, not a free model).
  Numbers are parsed as `Decimal` from the JSON text, so they stay exact; USD per token
  becomes a decimal string of USD per 1M tokens.
- The provider's native id is the litellm key minus its provider prefix. It maps to our
  canonical `{org}/{model}` id through providers.toml `native_ids` (reversed); for a first-party
  provider (one that serves its own org, e.g. openai, anthropic) an id matching its model
  patterns becomes `{org}/{id}` (after aliases.toml). Anything else stays a per-provider row
  keyed by the native id (`[native.<provider>]`).
- When two source rows land on the same (model, provider), the one whose native id is the id
  we actually send wins, then the first seen.
- Media models (embeddings, image generation, transcription) as `scripts/media_prices.py`
  says: rows with a `mode`, priced per input token, per image (by quality and size) or per
  second of audio.
- Capabilities (same keys as the prices): `modality` as `inputs->outputs` (`text+image->text`:
  inputs from supports_vision / supports_audio_input / supports_video_input and
  supported_modalities, outputs from supported_output_modalities and supports_audio_output,
  default text), `tools` (supports_function_calling), `vision`, `output` (max_output_tokens).
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import json
import sys
import tomllib
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from media_prices import (
    MEDIA_MODALITIES,
    MEDIA_MODES,
    MEDIA_PROVIDERS,
    media_row,
    merge,
    split_variant,
)

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "gatewayz"
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "model_prices.json"
OUT = PKG / "billing" / "prices.toml"
CAPABILITIES_OUT = PKG / "catalog" / "capabilities.toml"

# litellm_provider -> (our provider slug, key prefixes litellm puts before the native id;
# "" alone: keys are bare native ids)
LITELLM_PROVIDERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "openai": ("openai", ("",)),
    "anthropic": ("anthropic", ("",)),
    "gemini": ("google-ai-studio", ("gemini/",)),
    "vertex_ai-language-models": ("google-vertex", ("vertex_ai/", "")),
    "deepseek": ("deepseek", ("deepseek/", "")),
    "fireworks_ai": ("fireworks", ("fireworks_ai/",)),
    "together_ai": ("together", ("together_ai/",)),
    "groq": ("groq", ("groq/",)),
    "deepinfra": ("deepinfra", ("deepinfra/",)),
    "xai": ("xai", ("xai/",)),
    "mistral": ("mistral", ("mistral/",)),
    "perplexity": ("perplexity", ("perplexity/",)),
    "cerebras": ("cerebras", ("cerebras/",)),
    "sambanova": ("sambanova", ("sambanova/",)),
    "hyperbolic": ("hyperbolic", ("hyperbolic/",)),
    "nebius": ("nebius", ("nebius/",)),
    "novita": ("novita", ("novita/",)),
    "cohere_chat": ("cohere", ("cohere_chat/", "")),
    "cohere": ("cohere", ("cohere/", "")),
    "moonshot": ("moonshot", ("moonshot/",)),
    "zai": ("zai", ("zai/",)),
    "dashscope": ("alibaba-cloud", ("dashscope/",)),
    "cloudflare": ("cloudflare-workers-ai", ("cloudflare/",)),
    "vercel_ai_gateway": ("vercel-ai-gateway", ("vercel_ai_gateway/",)),
    "aihubmix": ("aihubmix", ("aihubmix/",)),
    "featherless_ai": ("featherless", ("featherless_ai/",)),
    "bedrock_converse": ("aws-bedrock", ("",)),
    "bedrock": ("aws-bedrock", ("",)),
}
MODES = {"chat", "completion"}
# First-party providers missing `orgs`/`model_patterns` in providers.toml.
EXTRA_FIRST_PARTY: dict[str, tuple[str, list[str]]] = {
    "google-vertex": ("google", ["gemini-*"]),
    "perplexity": ("perplexity", ["sonar", "sonar-*"]),
}
# litellm field -> our field; token prices are per token in the source, per 1M tokens in ours.
TOKEN_FIELDS = {
    "input_cost_per_token": "prompt",
    "output_cost_per_token": "completion",
    "cache_read_input_token_cost": "cached_read",
    "cache_creation_input_token_cost": "cache_write",
    "output_cost_per_reasoning_token": "reasoning",
}
UNIT_FIELDS = {"output_cost_per_image": "image", "input_cost_per_request": "request"}
FIELD_ORDER = ["mode", "prompt", "completion", "cached_read", "cache_write", "reasoning", "image"]
FIELD_ORDER += ["image_sizes", "second", "request", "context", "output", "effective_from"]
# Modalities in the order they are written (`text+image->text`), as catalog/capabilities.py reads.
INPUT_MODALITIES = ("text", "image", "audio", "video")
OUTPUT_MODALITIES = ("text", "image", "audio", "video")
CAPABILITY_ORDER = ["modality", "tools", "vision", "output"]


def _decimal_str(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _price_row(entry: dict[str, Any]) -> dict[str, Any] | None:
    row: dict[str, Any] = {}
    for src, ours in (*TOKEN_FIELDS.items(), *UNIT_FIELDS.items()):
        raw = entry.get(src)
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | Decimal):
            return None
        value = Decimal(raw)
        if not value.is_finite() or value < 0:
            return None
        row[ours] = _decimal_str(value.scaleb(6) if src in TOKEN_FIELDS else value)
    if "prompt" not in row or "completion" not in row:
        return None
    if Decimal(row["prompt"]) == 0 and Decimal(row["completion"]) == 0:
        return None  # a $0 token price is a missing price, never a free model
    context = entry.get("max_input_tokens") or entry.get("max_tokens")
    if isinstance(context, int) and not isinstance(context, bool) and context > 0:
        row["context"] = context
    output = entry.get("max_output_tokens")
    if isinstance(output, int) and not isinstance(output, bool) and output > 0:
        row["output"] = output  # bounds the hold of a request without max_tokens
    return row


def _capabilities(entry: dict[str, Any]) -> dict[str, Any]:
    """The catalog's capability facts of one source row (false flags left out: compact)."""
    declared_in = set(entry.get("supported_modalities") or ())
    flags = {
        "image": entry.get("supports_vision") is True,
        "audio": entry.get("supports_audio_input") is True,
        "video": entry.get("supports_video_input") is True,
    }
    inputs = [m for m in INPUT_MODALITIES if m == "text" or flags.get(m) or m in declared_in]
    declared_out = set(entry.get("supported_output_modalities") or ())
    if entry.get("supports_audio_output") is True:
        declared_out |= {"text", "audio"}
    outputs = [m for m in OUTPUT_MODALITIES if m in declared_out] or ["text"]
    caps: dict[str, Any] = {"modality": "+".join(inputs) + "->" + "+".join(outputs)}
    if entry.get("supports_function_calling") is True:
        caps["tools"] = True
    if "image" in inputs:
        caps["vision"] = True
    output = entry.get("max_output_tokens")
    if isinstance(output, int) and not isinstance(output, bool) and output > 0:
        caps["output"] = output
    return caps


class Resolver:
    def __init__(self) -> None:
        with (PKG / "providers" / "providers.toml").open("rb") as f:
            providers = tomllib.load(f)["providers"]
        with (PKG / "routing" / "aliases.toml").open("rb") as f:
            self.aliases: dict[str, str] = tomllib.load(f)["aliases"]
        self.native_ids = {slug: p.get("native_ids", {}) for slug, p in providers.items()}
        self.reverse = {
            slug: {native: canon for canon, native in ids.items()}
            for slug, ids in self.native_ids.items()
        }
        self.first_party: dict[str, tuple[str, list[str]]] = dict(EXTRA_FIRST_PARTY)
        for slug, p in providers.items():
            if len(p.get("orgs", [])) == 1 and p.get("model_patterns"):
                self.first_party[slug] = (p["orgs"][0], p["model_patterns"])

    def canonical(self, provider: str, native: str) -> str | None:
        if native in self.reverse.get(provider, {}):
            return self.reverse[provider][native]
        if provider == "aws-bedrock":
            for region in ("us.", "eu.", "apac.", "global."):
                if region + native in self.reverse[provider]:
                    return self.reverse[provider][region + native]
        fp = self.first_party.get(provider)
        if fp and any(fnmatch.fnmatchcase(native, pat) for pat in fp[1]):
            org = fp[0]
            alias = self.aliases.get(native)
            if alias and alias.startswith(org + "/"):
                return alias
            return f"{org}/{native}"
        return None

    def sent_id(self, provider: str, canonical: str) -> str:
        """The native id we send to `provider` for `canonical`."""
        fp = self.first_party.get(provider)
        default = canonical.split("/", 1)[1] if fp else canonical
        return self.native_ids.get(provider, {}).get(canonical, default)


def _native_id(key: str, prefixes: tuple[str, ...]) -> str | None:
    for prefix in prefixes:
        if key.startswith(prefix):
            native = key[len(prefix) :]
            if prefix == "" and "/" in native and prefixes != ("",):
                continue  # a bare-key provider's row with some other prefix
            return native or None
    return None


def convert(
    source: Path, effective_from: dt.date
) -> tuple[dict[str, Any], dict[str, Any], Counter[str]]:
    """(price book, capabilities with the same keys, counts)."""
    with source.open() as f:
        data = json.load(f, parse_float=Decimal)
    resolver = Resolver()
    models: dict[str, dict[str, dict[str, Any]]] = {}
    native: dict[str, dict[str, dict[str, Any]]] = {}
    caps_models: dict[str, dict[str, dict[str, Any]]] = {}
    caps_native: dict[str, dict[str, dict[str, Any]]] = {}
    exact: set[tuple[str, str]] = set()
    counts: Counter[str] = Counter()
    for key, entry in data.items():
        if isinstance(entry, dict) and entry.get("mode") in MEDIA_MODES:
            added = _add_media(key, entry, resolver, models, native, counts, effective_from)
            if added is not None:  # the catalog's capabilities, same keys as the prices
                canon, provider, base, caps = added
                slot = caps_models.setdefault(canon, {}) if canon else None
                if slot is not None:
                    slot[provider] = caps
                else:
                    caps_native.setdefault(provider, {})[base] = caps
            continue
        if not isinstance(entry, dict) or entry.get("mode") not in MODES:
            continue
        spec = LITELLM_PROVIDERS.get(str(entry.get("litellm_provider")))
        if spec is None:
            counts["skipped: provider not known"] += 1
            continue
        provider, prefixes = spec
        nid = _native_id(key, prefixes)
        if nid is None or (provider == "aws-bedrock" and "/" in nid):
            counts["skipped: key not a plain native id"] += 1
            continue
        row = _price_row(entry)
        if row is None:
            counts["skipped: no clean token price"] += 1
            continue
        row["effective_from"] = effective_from
        canon = resolver.canonical(provider, nid)
        if canon is None:
            if nid not in native.setdefault(provider, {}):
                native[provider][nid] = row
                caps_native.setdefault(provider, {})[nid] = _capabilities(entry)
            continue
        is_exact = resolver.sent_id(provider, canon) == nid
        slot = models.setdefault(canon, {})
        if provider not in slot or (is_exact and (canon, provider) not in exact):
            slot[provider] = row
            caps_models.setdefault(canon, {})[provider] = _capabilities(entry)
            if is_exact:
                exact.add((canon, provider))
    counts["canonical models"] = len(models)
    counts["canonical price rows"] = sum(len(v) for v in models.values())
    counts["native price rows"] = sum(len(v) for v in native.values())
    book = {"models": dict(sorted(models.items())), "native": dict(sorted(native.items()))}
    caps = {
        "models": dict(sorted(caps_models.items())),
        "native": dict(sorted(caps_native.items())),
    }
    return book, caps, counts


def _add_media(
    key: str,
    entry: dict[str, Any],
    resolver: Resolver,
    models: dict[str, dict[str, dict[str, Any]]],
    native: dict[str, dict[str, dict[str, Any]]],
    counts: Counter[str],
    effective_from: dt.date,
) -> tuple[str | None, str, str, dict[str, Any]] | None:
    """Add one media row; (canonical id or None, provider, native id, capabilities)."""
    litellm = str(entry.get("litellm_provider"))
    spec = MEDIA_PROVIDERS.get(litellm) or LITELLM_PROVIDERS.get(litellm)
    nid = None if spec is None else _native_id(key, spec[1])
    split = None if nid is None else split_variant(nid)
    if spec is None or split is None or (spec[0] == "aws-bedrock" and "/" in split[0]):
        counts["skipped media: provider, key or variant not served"] += 1
        return None
    mode = MEDIA_MODES[entry["mode"]]
    row = media_row(entry, mode, split[1])
    if row is None:
        counts[f"skipped media: no {mode} price"] += 1
        return None
    provider, (base, _) = spec[0], split
    canon = resolver.canonical(provider, base)
    table = models.setdefault(canon, {}) if canon else native.setdefault(provider, {})
    slot_key = provider if canon else base
    row["effective_from"] = effective_from
    table[slot_key] = merge(table.get(slot_key), row)
    counts[f"{mode} price rows"] += 1
    return canon, provider, base, {"modality": MEDIA_MODALITIES[mode]}


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):  # image_sizes: quoted keys ("hd/1024x1024")
        return (
            "{ "
            + ", ".join(f"{json.dumps(k)} = {_toml_value(value[k])}" for k in sorted(value))
            + " }"
        )
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


def _inline(row: dict[str, Any], order: list[str] = FIELD_ORDER) -> str:
    parts = [f"{k} = {_toml_value(row[k])}" for k in order if k in row]
    return "{ " + ", ".join(parts) + " }"


def render(book: dict[str, Any], effective_from: dt.date, source_name: str) -> str:
    lines = [
        "# Gatewayz price book. GENERATED by scripts/convert_prices.py from litellm's",
        f"# {source_name}; edit the converter (or use admin overrides), not this file.",
        "#",
        "# prompt, completion, cached_read, cache_write, reasoning: USD per 1M tokens (decimal",
        "# strings, exact). image: USD per generated image. request: USD per request.",
        "# context: max input tokens. output: max output tokens. effective_from: the date the",
        "# price applies from.",
        "# [models.<canonical id>] <provider> = row; [native.<provider>] <native id> = row for",
        "# models with no canonical id. [default]: the rate for models with no price at all.",
        "",
        "[meta]",
        "format = 1",
        f"source = {json.dumps(source_name)}",
        f"effective_from = {effective_from.isoformat()}",
        "",
        "[default]",
        'prompt = "1"',
        'completion = "2"',
        "",
    ]
    for canon, rows in book["models"].items():
        lines.append(f"[models.{json.dumps(canon)}]")
        lines.extend(f"{json.dumps(p)} = {_inline(r)}" for p, r in sorted(rows.items()))
        lines.append("")
    for provider, rows in book["native"].items():
        lines.append(f"[native.{json.dumps(provider)}]")
        lines.extend(f"{json.dumps(n)} = {_inline(r)}" for n, r in sorted(rows.items()))
        lines.append("")
    return "\n".join(lines)


def render_capabilities(caps: dict[str, Any], source_name: str) -> str:
    lines = [
        "# Gatewayz model capabilities for the catalog. GENERATED by scripts/convert_prices.py",
        f"# from litellm's {source_name}, for the same rows (and keys) as billing/prices.toml.",
        "#",
        "# modality: inputs->outputs, each a `+`-joined list of text, image, audio, video.",
        "# tools: supports function calling. vision: takes images. output: max output tokens.",
        "# Flags that are false are left out.",
        "",
    ]
    for canon, rows in caps["models"].items():
        lines.append(f"[models.{json.dumps(canon)}]")
        lines.extend(
            f"{json.dumps(p)} = {_inline(r, CAPABILITY_ORDER)}" for p, r in sorted(rows.items())
        )
        lines.append("")
    for provider, rows in caps["native"].items():
        lines.append(f"[native.{json.dumps(provider)}]")
        lines.extend(
            f"{json.dumps(n)} = {_inline(r, CAPABILITY_ORDER)}" for n, r in sorted(rows.items())
        )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--effective-from", type=dt.date.fromisoformat, default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--capabilities-out",
        type=Path,
        default=None,
        help="default: catalog/capabilities.toml, or next to --out when that is given",
    )
    args = parser.parse_args(argv)
    mtime = dt.datetime.fromtimestamp(args.source.stat().st_mtime, dt.UTC)
    effective = args.effective_from or mtime.date()
    book, caps, counts = convert(args.source, effective)
    text = render(book, effective, args.source.name)
    tomllib.loads(text)  # the output must parse
    args.out.write_text(text)
    caps_out = args.capabilities_out or (
        CAPABILITIES_OUT if args.out == OUT else args.out.with_name("capabilities.toml")
    )
    caps_text = render_capabilities(caps, args.source.name)
    tomllib.loads(caps_text)
    caps_out.parent.mkdir(parents=True, exist_ok=True)
    caps_out.write_text(caps_text)
    for name, n in sorted(counts.items()):
        print(f"{n:6d}  {name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
