"""The query string of `GET /catalog/models`: view, filters, search, order and page.

    view                 unique (default: one entry per model, with its providers) | full
                         (one entry per provider offer)
    provider             a provider slug: its offers only (in the unique view each model then
                         shows that provider's offer)
    modality             exact, e.g. text->text, text+image->text (`+` encoded or not)
    capability           function_calling, vision, streaming (comma-separated or repeated: all)
    min_prompt_price, max_prompt_price, min_completion_price, max_completion_price
                         USD per 1M tokens
    min_context          context length at least this
    q                    search: case-insensitive substring of the id or name
    sort                 id (default) | price (prompt, then completion, cheapest first) |
                         context (largest first)
    limit, offset        page size 1–500 (default 100), offset ≥ 0

An unknown parameter or a bad value is a 400: a typo never silently returns everything.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

from gatewayz.errors import InvalidRequest

VIEWS = ("unique", "full")
SORTS = ("id", "price", "context")
# Parameter value → the offer attribute it requires.
CAPABILITIES = {
    "function_calling": "tools",
    "tools": "tools",
    "vision": "vision",
    "streaming": "streaming",
}
MAX_LIMIT = 500
DEFAULT_LIMIT = 100
_PRICES = ("min_prompt_price", "max_prompt_price", "min_completion_price", "max_completion_price")
_KNOWN = frozenset(
    {"view", "provider", "modality", "capability", "min_context", "q", "sort", "limit", "offset"}
    | set(_PRICES)
)


@dataclass(frozen=True, slots=True)
class Query:
    view: str = "unique"
    provider: str | None = None
    modality: str | None = None
    capabilities: tuple[str, ...] = ()  # offer attributes: tools, vision, streaming
    min_prompt_price: Decimal | None = None
    max_prompt_price: Decimal | None = None
    min_completion_price: Decimal | None = None
    max_completion_price: Decimal | None = None
    min_context: int | None = None
    q: str | None = None
    sort: str = "id"
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def key(self) -> tuple[object, ...]:
        return astuple(self)

    @classmethod
    def parse(cls, query_string: bytes | str) -> Query:
        text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
        values: dict[str, object] = {}
        caps: list[str] = []
        for name, value in parse_qsl(text, keep_blank_values=True):
            if name not in _KNOWN:
                raise InvalidRequest(f"Unknown query parameter '{name}'.", param=name)
            if name == "capability":
                caps += [_capability(v) for v in value.split(",") if v.strip()]
            elif name in values:
                raise InvalidRequest(f"Query parameter '{name}' given twice.", param=name)
            else:
                values[name] = _value(name, value)
        if caps:
            values["capabilities"] = tuple(sorted(set(caps)))
        return cls(**values)  # type: ignore[arg-type]


def _capability(value: str) -> str:
    found = CAPABILITIES.get(value.strip().lower())
    if found is None:
        names = ", ".join(sorted({"function_calling", "vision", "streaming"}))
        raise InvalidRequest(f"Unknown capability '{value}' (one of {names}).", param="capability")
    return found


def _value(name: str, value: str) -> object:
    if name == "view":
        return _choice(name, value, VIEWS)
    if name == "sort":
        return _choice(name, value, SORTS)
    if name in ("limit", "offset", "min_context"):
        low = 1 if name == "limit" else 0
        number = _int(name, value, low)
        if name == "limit" and number > MAX_LIMIT:
            raise InvalidRequest(f"'limit' is at most {MAX_LIMIT}.", param=name)
        return number
    if name in _PRICES:
        try:
            price = Decimal(value)
        except InvalidOperation:
            raise InvalidRequest(
                f"'{name}' must be a number (USD per 1M tokens).", param=name
            ) from None
        if not price.is_finite() or price < 0:
            raise InvalidRequest(f"'{name}' must be a number >= 0.", param=name)
        return price
    text = value.strip()
    if not text:
        raise InvalidRequest(f"'{name}' is empty.", param=name)
    if name == "modality":  # an unencoded `+` arrives as a space
        return text.replace(" ", "+")
    return text.lower() if name == "q" else text


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidRequest(f"'{name}' must be one of {', '.join(allowed)}.", param=name)
    return value


def _int(name: str, value: str, low: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InvalidRequest(f"'{name}' must be an integer.", param=name) from None
    if number < low:
        raise InvalidRequest(f"'{name}' must be >= {low}.", param=name)
    return number
