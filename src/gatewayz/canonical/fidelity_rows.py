"""The fidelity table's rows (`fidelity.py` applies them; `docs/fidelity.md` shows them): one
row per field of a chat request, one cell per provider family, each a status and a note."""

from __future__ import annotations

from dataclasses import dataclass

from gatewayz.canonical.fidelity_fields import NATIVE_EXTRAS

CARRIED, TRANSLATED, EMULATED, REFUSED = "carried", "translated", "emulated", "refused"
FAMILIES = ("openai", "anthropic", "gemini", "vertex", "bedrock", "cohere", "fal")
# The dialect whose every field a family's format carries as it is.
OWN_DIALECT = {"openai": "openai", "anthropic": "anthropic"}

Cell = tuple[str, str]  # (status, how)


@dataclass(frozen=True, slots=True)
class Row:
    key: str  # USES[key] says whether (and under which name) a request uses the field
    label: str  # the field in both dialects, for the document
    cells: dict[str, Cell]

    def cell(self, family: str) -> Cell:
        return self.cells.get(family, (CARRIED, ""))


def _row(key: str, label: str, **cells: Cell | str) -> Row:
    """A row; a bare status string is a cell without a note, families not named carry it."""
    full = {f: (c, "") if isinstance(c, str) else c for f, c in cells.items()}
    return Row(key, label, full)


def _names(family: str) -> str:
    return ", ".join(f"`{n}`" for n in sorted(NATIVE_EXTRAS[family]))


def _all_but(family: str, cell: Cell) -> dict[str, Cell]:
    """`cell` for every family but `family` (which carries the field)."""
    return {f: cell for f in FAMILIES if f != family}


_GEMINI_SAMPLING = (TRANSLATED, "generationConfig")
_NO_FAL = (REFUSED, "fal's any-llm API takes a prompt and a system prompt only")
_NO_SEED = "the API has no seed"
_EMULATE_N = (EMULATED, "n parallel requests merged into n choices, each billed")
_FIRST_CALL = (EMULATED, "the answer keeps its first tool call")
_JSON_BY_INSTRUCTION = (EMULATED, "a system instruction to answer with one JSON object only")
_NO_LOGPROBS = "the API returns no token log probabilities"
_ONLY_OPENAI = "an OpenAI-only feature"
_FOREIGN = "a field of another API, which this one does not have"
_EFFORT_BUDGET = (TRANSLATED, "a thinking budget (low 1024, medium 4096, high 16384 tokens)")

ROWS: tuple[Row, ...] = (
    _row(
        "max_tokens",
        "`max_tokens` / `max_completion_tokens` · `max_tokens`",
        gemini=(TRANSLATED, "generationConfig.maxOutputTokens"),
        vertex=(TRANSLATED, "generationConfig.maxOutputTokens"),
        bedrock=(TRANSLATED, "inferenceConfig.maxTokens"),
        fal=(EMULATED, "the answer is cut after max_tokens (about 4 characters a token)"),
    ),
    _row(
        "temperature",
        "`temperature`, `top_p`",
        gemini=_GEMINI_SAMPLING,
        vertex=_GEMINI_SAMPLING,
        bedrock=(TRANSLATED, "inferenceConfig"),
        cohere=(TRANSLATED, "`temperature`, `p`"),
        fal=_NO_FAL,
    ),
    _row(
        "top_k",
        "`top_k` (an extra field) · `top_k`",
        openai=(CARRIED, "OpenAI itself refuses it (its 400 is returned); vLLM and others take it"),
        gemini=_GEMINI_SAMPLING,
        vertex=_GEMINI_SAMPLING,
        bedrock=(TRANSLATED, "additionalModelRequestFields"),
        cohere=(TRANSLATED, "`k`"),
        fal=_NO_FAL,
    ),
    _row(
        "stop",
        "`stop` · `stop_sequences`",
        anthropic=(TRANSLATED, "`stop_sequences`"),
        gemini=(TRANSLATED, "generationConfig.stopSequences"),
        vertex=(TRANSLATED, "generationConfig.stopSequences"),
        bedrock=(TRANSLATED, "inferenceConfig.stopSequences"),
        cohere=(TRANSLATED, "`stop_sequences`"),
        fal=_NO_FAL,
    ),
    _row(
        "seed",
        "`seed`",
        anthropic=(REFUSED, _NO_SEED),
        gemini=_GEMINI_SAMPLING,
        vertex=_GEMINI_SAMPLING,
        bedrock=(REFUSED, "Converse has no seed"),
        fal=_NO_FAL,
    ),
    _row(
        "penalties",
        "`presence_penalty`, `frequency_penalty`",
        anthropic=(REFUSED, "the API has no repetition penalties"),
        gemini=_GEMINI_SAMPLING,
        vertex=_GEMINI_SAMPLING,
        bedrock=(REFUSED, "Converse has no repetition penalties"),
        fal=_NO_FAL,
    ),
    _row(
        "logit_bias",
        "`logit_bias`",
        **{f: (REFUSED, "the API has no logit bias") for f in FAMILIES if f != "openai"},
    ),
    _row(
        "n",
        "`n` > 1",
        anthropic=_EMULATE_N,
        gemini=(TRANSLATED, "generationConfig.candidateCount"),
        vertex=(TRANSLATED, "generationConfig.candidateCount"),
        bedrock=_EMULATE_N,
        cohere=_EMULATE_N,
        fal=_EMULATE_N,
    ),
    _row(
        "tools",
        "`tools` (functions), legacy `functions` · `tools` (client tools)",
        openai=(CARRIED, "legacy `functions` are tools, answered back as `function_call`"),
        anthropic=(TRANSLATED, "`name`, `description`, `input_schema`"),
        gemini=(TRANSLATED, "functionDeclarations"),
        vertex=(TRANSLATED, "functionDeclarations"),
        bedrock=(TRANSLATED, "toolConfig"),
        cohere=(TRANSLATED, "`tools`"),
        fal=(REFUSED, "fal's any-llm API has no tools"),
    ),
    _row(
        "custom_tools",
        '`tools[].type: "custom"`, `tool_choice: {"type": "custom"}`',
        **{f: (REFUSED, "free-form custom tools are " + _ONLY_OPENAI) for f in FAMILIES[1:]},
    ),
    _row(
        "server_tools",
        "· server tools (`web_search_…`, `bash_…`, …)",
        **_all_but("anthropic", (REFUSED, "Anthropic's server tools run at Anthropic")),
    ),
    _row(
        "tool_choice",
        "`tool_choice` `required` / a named function · `any` / `tool`",
        anthropic=(TRANSLATED, "`any` / `tool`"),
        gemini=(TRANSLATED, "functionCallingConfig ANY"),
        vertex=(TRANSLATED, "functionCallingConfig ANY"),
        bedrock=(TRANSLATED, "toolChoice `any` / `tool`"),
        cohere=(EMULATED, "a named tool is the only tool sent, with tool_choice REQUIRED"),
        fal=(REFUSED, "fal's any-llm API has no tools"),
    ),
    _row(
        "allowed_tools",
        '`tool_choice: {"type": "allowed_tools"}`',
        **{f: (TRANSLATED, "only the allowed tools are sent") for f in FAMILIES[1:-1]},
        fal=(REFUSED, "fal's any-llm API has no tools"),
    ),
    _row(
        "parallel_tool_calls",
        "`parallel_tool_calls: false` · `disable_parallel_tool_use`",
        anthropic=(TRANSLATED, "`disable_parallel_tool_use`"),
        gemini=_FIRST_CALL,
        vertex=_FIRST_CALL,
        bedrock=_FIRST_CALL,
        cohere=_FIRST_CALL,
        fal=(REFUSED, "fal's any-llm API has no tools"),
    ),
    _row(
        "json_object",
        '`response_format: {"type": "json_object"}`',
        anthropic=_JSON_BY_INSTRUCTION,
        gemini=(TRANSLATED, "responseMimeType application/json"),
        vertex=(TRANSLATED, "responseMimeType application/json"),
        bedrock=_JSON_BY_INSTRUCTION,
        fal=_JSON_BY_INSTRUCTION,
    ),
    _row(
        "json_schema",
        '`response_format: {"type": "json_schema"}` · `output_config.format`, `output_format`',
        openai=(CARRIED, "`output_config.format` becomes `response_format`"),
        anthropic=(TRANSLATED, "`output_config.format` (structured outputs)"),
        gemini=(TRANSLATED, "responseSchema"),
        vertex=(TRANSLATED, "responseSchema"),
        bedrock=(TRANSLATED, "outputConfig.textFormat"),
        cohere=(TRANSLATED, "`response_format.json_schema`"),
        fal=(REFUSED, "fal's any-llm API cannot constrain its output"),
    ),
    _row(
        "logprobs",
        "`logprobs`, `top_logprobs`",
        **{f: (REFUSED, _NO_LOGPROBS) for f in FAMILIES[1:]},
    ),
    _row(
        "user",
        "`user` · `metadata.user_id`",
        openai=(CARRIED, "`metadata.user_id` becomes `user`"),
        anthropic=(TRANSLATED, "`metadata.user_id`"),
        **{
            f: (EMULATED, "the API has no end-user field: the gateway's access log records it")
            for f in ("gemini", "vertex", "bedrock", "cohere", "fal")
        },
    ),
    _row(
        "metadata",
        "`metadata` (OpenAI's key-value pairs)",
        **{f: (REFUSED, "stored-completion metadata is " + _ONLY_OPENAI) for f in FAMILIES[1:]},
    ),
    _row(
        "reasoning_effort",
        "`reasoning_effort` · `output_config.effort`",
        openai=(CARRIED, "`output_config.effort` becomes it (`max`: `xhigh`)"),
        anthropic=(TRANSLATED, "`output_config.effort`; from OpenAI, " + _EFFORT_BUDGET[1]),
        gemini=(TRANSLATED, "thinkingConfig"),
        vertex=(TRANSLATED, "thinkingConfig"),
        bedrock=(REFUSED, "Converse has no reasoning effort"),
        cohere=(REFUSED, "Cohere's API has no reasoning effort"),
        fal=(TRANSLATED, "`reasoning: true`"),
    ),
    _row(
        "thinking",
        "`thinking` (an extra field) · `thinking`",
        openai=(TRANSLATED, "`reasoning_effort` by budget (≤ 2048 low, ≤ 8192 medium, else high)"),
        gemini=(TRANSLATED, "thinkingConfig"),
        vertex=(TRANSLATED, "thinkingConfig"),
        bedrock=(TRANSLATED, "additionalModelRequestFields"),
        cohere=(TRANSLATED, "`thinking.token_budget`"),
        fal=(TRANSLATED, "`reasoning: true`"),
    ),
    _row(
        "cache_control",
        "`cache_control` on parts (OpenRouter's) · on blocks, tools, `system`",
        openai=(TRANSLATED, "OpenAI-compatible providers cache prompt prefixes themselves"),
        gemini=(TRANSLATED, "Gemini caches prompt prefixes itself (implicit caching)"),
        vertex=(TRANSLATED, "Gemini caches prompt prefixes itself (implicit caching)"),
        bedrock=(REFUSED, "not mapped to Converse's cachePoint blocks yet"),
        cohere=(REFUSED, "Cohere's API has no prompt caching"),
        fal=(REFUSED, "fal's any-llm API has no prompt caching"),
    ),
    _row(
        "betas",
        "· `anthropic-beta` header",
        **_all_but(
            "anthropic",
            (TRANSLATED, "it turns on Anthropic features; their fields are judged one by one"),
        ),
    ),
    _row(
        "images",
        "image parts · image blocks",
        anthropic=(TRANSLATED, "image blocks"),
        gemini=(TRANSLATED, "inlineData / fileData"),
        vertex=(TRANSLATED, "inlineData / fileData"),
        bedrock=(TRANSLATED, "image blocks, base64 only (a URL is a 400)"),
        fal=(REFUSED, "fal's any-llm API takes text only"),
    ),
    _row(
        "documents",
        "· document blocks",
        openai=(TRANSLATED, "`file` parts (inline data; a URL is refused)"),
        gemini=(TRANSLATED, "inlineData / fileData"),
        vertex=(TRANSLATED, "inlineData / fileData"),
        bedrock=(TRANSLATED, "document blocks"),
        cohere=(TRANSLATED, "plain text becomes `documents` (a PDF is a 400)"),
        fal=(REFUSED, "fal's any-llm API takes text only"),
    ),
    _row(
        "audio",
        "`input_audio` parts",
        anthropic=(REFUSED, "the Messages API takes no audio input"),
        gemini=(TRANSLATED, "inlineData of the audio's type (`audio/wav`, ...)"),
        vertex=(TRANSLATED, "inlineData of the audio's type (`audio/wav`, ...)"),
        bedrock=(REFUSED, "Converse takes no audio input"),
        cohere=(REFUSED, "Cohere's chat API takes no audio input"),
        fal=(REFUSED, "fal's any-llm API takes text only"),
    ),
    _row(
        "files",
        "`file` parts other than an inline PDF (by `file_id`, other data)",
        anthropic=(REFUSED, "only an inline PDF maps to a document block"),
        gemini=(TRANSLATED, "inlineData (a `file_id` is a 400)"),
        vertex=(TRANSLATED, "inlineData (a `file_id` is a 400)"),
        bedrock=(REFUSED, "only an inline PDF maps to a document block"),
        cohere=(REFUSED, "Cohere's chat API takes no files"),
        fal=(REFUSED, "fal's any-llm API takes text only"),
    ),
    _row(
        "system_only",
        "a conversation of system / developer messages only",
        anthropic=(REFUSED, "the Messages API needs a user or assistant turn"),
        gemini=(REFUSED, "`contents` needs a user or model turn"),
        vertex=(REFUSED, "`contents` needs a user or model turn"),
        bedrock=(REFUSED, "a Converse conversation starts with a user message"),
        fal=(REFUSED, "fal's any-llm API needs a user or assistant turn"),
    ),
    _row(
        "tool_arguments",
        "tool-call arguments that are not a JSON object (the model's own, sent back)",
        anthropic=(REFUSED, "a `tool_use` block's `input` is a JSON object"),
        gemini=(REFUSED, "a functionCall's `args` is a JSON object"),
        vertex=(REFUSED, "a functionCall's `args` is a JSON object"),
        bedrock=(REFUSED, "a toolUse's `input` is the tool's JSON input, an object"),
        fal=(REFUSED, "fal's any-llm API has no tools"),
    ),
    _row(
        "block_fields",
        "· other block fields (`citations`, `context`, …)",
        **_all_but("anthropic", (REFUSED, "fields of Anthropic's content blocks")),
    ),
    _row(
        "own_fields",
        "any other field, to a provider of the caller's own format",
        openai=(CARRIED, "the OpenAI dialect's (`prediction`, `store`, `service_tier`, ...)"),
        anthropic=(CARRIED, "the Anthropic dialect's (`container`, `mcp_servers`, ...)"),
        **{f: (CARRIED, "(no dialect of the gateway speaks this format)") for f in FAMILIES[2:]},
    ),
    _row(
        "foreign_fields",
        "any other field, to a provider of another format",
        openai=(REFUSED, _FOREIGN),
        anthropic=(
            REFUSED,
            _FOREIGN + "; carried, as Anthropic knows them: " + _names("anthropic"),
        ),
        gemini=(REFUSED, _FOREIGN + "; carried, as Gemini knows them: " + _names("gemini")),
        vertex=(REFUSED, _FOREIGN + "; carried, as Gemini knows them: " + _names("vertex")),
        **{f: (REFUSED, _FOREIGN) for f in ("bedrock", "cohere", "fal")},
    ),
)
