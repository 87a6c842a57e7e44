"""What the tier classifier sees of a request: its user text as hashed word n-grams, and its
shape as named indicator features (length, lines, code blocks, file paths, error traces, tools
offered, questions, numbered parts, images). Hashing is crc32, so the features — and the
decision built on them — are the same in every process and on every machine."""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass

from gatewayz.canonical.types import ChatRequest, ImagePart

BUCKETS = 1 << 13
HEAD, TAIL = 6000, 2000  # characters of a long prompt looked at: its start and its end
MAX_TOOLS = 64
WORDS = 0.5  # the words' weight against one shape feature's

_WORD = re.compile(r"[a-z_][a-z0-9_]*|[0-9]+|[^\sa-z0-9_]")
_PATH = re.compile(
    r"[\w./-]+\.(?:py|js|jsx|ts|tsx|go|rs|java|kt|rb|php|c|h|cc|cpp|hpp|cs|swift|scala|sql"
    r"|sh|yaml|yml|toml|json|md|html|css|vue|tf|proto|gradle|xml)\b"
)
_TRACE = re.compile(
    r"Traceback \(most recent call last\)|^\s+at [\w.$<>]+\(.*:\d+\)|panicked at|^panic:"
    r"|Exception in thread|error\[E\d+\]|^\s*File \".*\", line \d+|Uncaught \w*Error"
    r"|^\w*(?:Error|Exception): ",
    re.MULTILINE,
)
_NUMBERED = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+\S", re.MULTILINE)
# Words that tell how hard a request is, by the tier they point to (counted, as levels).
_CUES = {
    name: re.compile(r"\b(?:" + "|".join(words) + r")", re.IGNORECASE)
    for name, words in {
        "simple": (
            "translat",
            "synonym",
            "rename",
            "convert",
            "typo",
            "spelling",
            "reformat",
            "capitali",
            "what does",
            "what is",
            "what's",
            "defin",
            "one-line",
            "one line",
            "quick",
            "in a word",
            "passive voice",
            "recommend a name",
            "name for",
            "remind",
        ),
        "moderate": (
            "write a function",
            "write a ",
            "explain",
            "summari",
            "draft",
            "email",
            "regex",
            "query",
            "how do i",
            "how to",
            "example",
            "steps",
            "table",
            "tests?\\b",
            "fix",
        ),
        "complex": (
            "prove",
            "proof",
            "derive",
            "rigorous",
            "design",
            "architect",
            "trade-?off",
            "concurren",
            "race",
            "deadlock",
            "distributed",
            "optimi[sz]",
            "performance",
            "scal",
            "evaluat",
            "analy[sz]",
            "evidence",
            "implication",
            "complexity",
            "lifetime",
            "leak",
            "undefined behaviou?r",
            "security",
            "threat",
            "invariant",
        ),
        "agentic": (
            "repositor",
            "repo\\b",
            "codebase",
            "migrat",
            "across",
            "run the tests",
            "run tests",
            "investigat",
            "roadmap",
            "research",
            "multi-step",
            "end-to-end",
            "all files",
            "pull request",
            "monolith",
            "microservice",
            "open problem",
            "conjecture",
            "state of the art",
            "literature",
            "phd",
            "plan\\b",
        ),
    }.items()
}


@dataclass(frozen=True, slots=True)
class Prompt:
    """A request as the router classifies it."""

    kind: str  # the router's: general | code
    text: str  # the users' text, head and tail of a long one
    tools: tuple[str, ...] = ()  # names of the tools offered
    images: bool = False

    @classmethod
    def of(cls, kind: str, req: ChatRequest) -> Prompt:
        users = [m for m in req.messages if m.role == "user"]
        text = "\n\n".join(m.text() for m in users[-4:])
        images = any(
            isinstance(p, ImagePart)
            for m in users
            if isinstance(m.content, list)
            for p in m.content
        )
        tools = tuple(t.name[:64] for t in (req.tools or ())[:MAX_TOOLS])
        return cls(kind, clip(text), tools, images)


def clip(text: str) -> str:
    return text if len(text) <= HEAD + TAIL else text[:HEAD] + "\n" + text[-TAIL:]


def _bucket(name: str) -> int:
    return zlib.crc32(name.encode()) % BUCKETS


def _level(n: int, edges: tuple[int, ...]) -> int:
    """The index of the first edge above `n` (so 0 … len(edges))."""
    return next((i for i, edge in enumerate(edges) if n < edge), len(edges))


def shape(p: Prompt) -> list[str]:
    """The named indicator features of a prompt's shape."""
    text = p.text
    fences = text.count("```") // 2
    paths = len(set(_PATH.findall(text)))
    return [
        f"kind={p.kind}",
        f"chars={_level(len(text), (80, 200, 500, 1200, 3000))}",
        f"lines={_level(text.count(chr(10)) + 1, (2, 5, 15, 40))}",
        f"fences={min(fences, 3)}",
        f"paths={min(paths, 4)}",
        f"trace={int(bool(_TRACE.search(text)))}",
        f"tools={_level(len(p.tools), (1, 3, 6))}",
        *(f"tool:{name.lower()}" for name in p.tools),
        f"questions={min(text.count('?'), 3)}",
        f"parts={_level(len(_NUMBERED.findall(text)), (2, 4, 7))}",
        f"images={int(p.images)}",
        *(f"cue:{name}={min(len(rx.findall(text)), 3)}" for name, rx in _CUES.items()),
    ]


def features(p: Prompt) -> dict[int, float]:
    """The prompt as a sparse vector: its words (binary, scaled to a norm of `WORDS`), each
    shape feature and its pairing with the router kind (value 1). (Word pairs and character
    n-grams scored lower in cross-validation on the labelled set.)"""
    grams = {f"w:{w}" for w in _WORD.findall(p.text.lower())}
    vec: dict[int, float] = {}
    if grams:
        weight = WORDS / math.sqrt(len(grams))
        for g in grams:
            i = _bucket(g)
            vec[i] = vec.get(i, 0.0) + weight
    for name in shape(p):
        for f in (name, f"{p.kind}|{name}"):
            i = _bucket(f)
            vec[i] = vec.get(i, 0.0) + 1.0
    return vec
