"""The fidelity matrix: which inbound dialect reaches which provider family with which
features intact. Cells are tests (test_matrix.py); this module defines the axes and renders
the table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gatewayz.canonical.fidelity_doc import markdown as fields_section

DIALECTS = ["openai", "anthropic", "responses"]
# How each dialect's section of the table is titled (the SDK and API its cells call).
DIALECT_TITLES = {
    "openai": "openai SDK",
    "anthropic": "anthropic SDK",
    "responses": "openai SDK, Responses API (`client.responses`)",
}
SCENARIOS = ["plain", "streaming", "tools", "streaming_tools", "images_in", "usage"]


@dataclass(frozen=True)
class Family:
    name: str  # wire format (the package providers/<name>/)
    provider: str  # the provider slug configured for it
    model: str  # the model name a client sends
    # provider_env entry for the provider, given the simulator's port and a scratch dir
    env: Any = field(default=None, compare=False)
    # scenario -> why the provider itself cannot do it (shown as "n/a" with the reason)
    limits: dict[str, str] = field(default_factory=dict, compare=False)


def _plain(port: int, _tmp: Path) -> dict[str, str]:
    return {"base_url": f"http://127.0.0.1:{port}", "api_key": "sk-upstream"}


def _vertex(port: int, tmp: Path) -> dict[str, str]:
    from tests.providers.vertex.helpers import write_service_account

    sa = write_service_account(tmp / "vertex-sa.json", port)
    return {
        "base_url": f"http://127.0.0.1:{port}",
        "api_key": str(sa),
        "var:GOOGLE_CLOUD_LOCATION": "us-central1",
    }


def _bedrock(port: int, _tmp: Path) -> dict[str, str]:
    return {
        "base_url": f"http://127.0.0.1:{port}",
        "api_key": "AKIDEXAMPLE",
        "var:AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "var:AWS_REGION": "us-east-1",
    }


def _fal(port: int, _tmp: Path) -> dict[str, str]:
    return {"base_url": f"http://127.0.0.1:{port}", "api_key": "fal-key"}


FAMILIES = [
    Family(
        "openai",
        "vllm",
        "fidelity-model",
        lambda port, _tmp: {"base_url": f"http://127.0.0.1:{port}/v1", "models": "fidelity-model"},
    ),
    Family("anthropic", "anthropic", "anthropic/claude-sonnet-4-5", _plain),
    Family("gemini", "google-ai-studio", "google-ai-studio/gemini-2.5-flash", _plain),
    Family("vertex", "google-vertex", "google-vertex/gemini-2.5-flash", _vertex),
    Family("bedrock", "aws-bedrock", "aws-bedrock/us.amazon.nova-pro-v1:0", _bedrock),
    Family("cohere", "cohere", "cohere/command-a-03-2025", _plain),
    Family(
        "fal",
        "fal",
        "fal/google/gemini-flash-1.5",
        _fal,
        limits={
            "usage": "fal's any-llm API reports no token counts; Gatewayz estimates them "
            "(about 4 characters per token) and marks the usage as estimated"
        },
    ),
]


# The media endpoints (POST /v1/embeddings, /v1/images/generations, /v1/audio/transcriptions)
# through the openai SDK: each family's model for each, or why the provider has none.
MEDIA = ["embeddings", "images", "transcription"]
MEDIA_MODELS: dict[str, dict[str, str]] = {
    "openai": {"embeddings": "fid-embed", "images": "fid-image", "transcription": "fid-whisper"},
    "gemini": {
        "embeddings": "google-ai-studio/gemini-embedding-001",
        "images": "google-ai-studio/imagen-3.0-generate-002",
    },
    "vertex": {
        "embeddings": "google-vertex/text-embedding-005",
        "images": "google-vertex/imagen-3.0-generate-002",
    },
    "bedrock": {
        "embeddings": "aws-bedrock/amazon.titan-embed-text-v2:0",
        "images": "aws-bedrock/amazon.titan-image-generator-v2:0",
    },
    "cohere": {"embeddings": "cohere/embed-english-v3.0"},
    "fal": {"images": "fal/fal-ai/flux/schnell"},
}
_NO_AUDIO = "{} has no transcription endpoint of its own (its chat models take audio in a prompt)"
MEDIA_LIMITS: dict[tuple[str, str], str] = {
    ("anthropic", "embeddings"): "Anthropic's API has no embeddings (it points to Voyage AI)",
    ("anthropic", "images"): "Anthropic's API does not generate images",
    ("anthropic", "transcription"): "Anthropic's API has no transcription endpoint",
    ("gemini", "transcription"): _NO_AUDIO.format("Gemini's API"),
    ("vertex", "transcription"): _NO_AUDIO.format("Vertex AI's Gemini API"),
    ("bedrock", "transcription"): "Bedrock's runtime has no transcription (that is Amazon "
    "Transcribe, a separate service)",
    ("cohere", "images"): "Cohere does not generate images",
    ("cohere", "transcription"): "Cohere has no transcription endpoint",
    ("fal", "embeddings"): "fal serves no embedding models",
    ("fal", "transcription"): "fal's Whisper apps take audio by URL, not upload; not served here",
}


def render_table(results: dict[tuple[str, str, str], str]) -> str:
    lines = [
        "# Fidelity matrix",
        "",
        "Generated by the test suite (`tests/fidelity/`): each cell is an end-to-end test in",
        "which the official SDK of the inbound dialect calls a running gateway that serves the",
        "model through a provider of that wire format (a simulator speaking it exactly).",
        "Do not edit by hand: `make test` rewrites it, and CI fails when it is stale.",
        "",
        "Scenarios: **plain** (one answer), **streaming** (same text streamed, usage at the end),",
        "**tools** (tool calls with valid JSON arguments), **streaming tools** (tool-call",
        "arguments streamed in pieces and reassembled), **images in** (an image in the prompt",
        "reaches the provider in its own format), **usage** (real token counts, not estimates).",
    ]
    for dialect in DIALECTS:
        lines += ["", f"## Inbound: {DIALECT_TITLES[dialect]}", ""]
        lines.append(
            "| family (provider) | " + " | ".join(s.replace("_", " ") for s in SCENARIOS) + " |"
        )
        lines.append("|---|" + "---|" * len(SCENARIOS))
        notes: list[str] = []
        for fam in FAMILIES:
            cells = []
            for scenario in SCENARIOS:
                outcome = results.get((dialect, fam.name, scenario), "not run")
                if outcome.startswith("n/a: "):
                    notes.append(f"- {fam.name} / {scenario.replace('_', ' ')}: {outcome[5:]}")
                    outcome = f"n/a ({len(notes)})"
                cells.append(outcome)
            lines.append(f"| {fam.name} ({fam.provider}) | " + " | ".join(cells) + " |")
        if notes:
            lines += ["", "Not applicable:", ""]
            lines += [f"{i}. {n[2:]}" for i, n in enumerate(notes, 1)]
    lines += _media_section(results)
    lines += fields_section()  # the request-field table the gateway applies
    return "\n".join(lines) + "\n"


def _media_section(results: dict[tuple[str, str, str], str]) -> list[str]:
    lines = [
        "",
        "## Media endpoints: openai SDK",
        "",
        "Embeddings (`embeddings.create`, billed per input token), images (`images.generate`,",
        "per image by quality and size) and transcription (`audio.transcriptions.create`, per",
        "second of audio measured from the file), each charged exactly once at its price.",
        "",
        "| family (provider) | " + " | ".join(MEDIA) + " |",
        "|---|" + "---|" * len(MEDIA),
    ]
    notes: list[str] = []
    for fam in FAMILIES:
        cells = []
        for op in MEDIA:
            outcome = results.get(("media", fam.name, op), "not run")
            if outcome.startswith("n/a: "):
                notes.append(f"{fam.name} / {op}: {outcome[5:]}")
                outcome = f"n/a ({len(notes)})"
            cells.append(outcome)
        lines.append(f"| {fam.name} ({fam.provider}) | " + " | ".join(cells) + " |")
    if notes:
        lines += ["", "Not applicable:", ""]
        lines += [f"{i}. {n}" for i, n in enumerate(notes, 1)]
    return lines
