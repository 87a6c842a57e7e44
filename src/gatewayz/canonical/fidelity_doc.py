"""The fidelity table (`fidelity.py`) as Markdown, for `docs/fidelity.md` (written by the
fidelity tests with the rest of that document)."""

from __future__ import annotations

from gatewayz.canonical.fidelity import FAMILIES, ROWS


def markdown() -> list[str]:
    """The section's lines: the legend, one row per field, one column per family; a cell's
    note is a numbered footnote (one number per distinct note)."""
    lines = [
        "",
        "## Request fields, family by family",
        "",
        "Every field of a chat request, in either dialect (OpenAI's name · Anthropic's), is",
        "**carried** (the provider's format has it), **translated** (under its own name or",
        "shape), **emulated** (the gateway does it) or **refused**: a provider of that family is",
        "passed over, so the request is routed to one that can take it, and with none left the",
        "answer is a 400 naming the field (`unsupported_by_provider`). Never silently dropped.",
        "Generated from `src/gatewayz/canonical/fidelity_rows.py`, the table the gateway applies.",
        "",
        "| field | " + " | ".join(FAMILIES) + " |",
        "|---|" + "---|" * len(FAMILIES),
    ]
    notes: dict[str, int] = {}
    for row in ROWS:
        cells = []
        for family in FAMILIES:
            status, note = row.cell(family)
            if note:
                number = notes.setdefault(note, len(notes) + 1)
                status = f"{status} ({number})"
            cells.append(status)
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    lines += ["", "Notes:", ""]
    lines += [f"{n}. {text}" for text, n in notes.items()]
    return lines
