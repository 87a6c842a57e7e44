"""The signature verifiers the README documents (Python and JavaScript) accept what the
dispatcher signs, and refuse a changed body, another secret and an old timestamp."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from gatewayz.webhooks.signing import new_secret, signature

README = Path(__file__).parents[2] / "README.md"
BODY = b'{"created":1,"data":{"balance_usd":"0.5"},"id":"evt_1","type":"credits.low"}'


def _snippet(language: str) -> str:
    text = README.read_text()
    section = text[text.index("**Webhooks**") :]
    found = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert found, f"no {language} verifier in the README's Webhooks section"
    return found.group(1)


def _cases() -> list[tuple[str, bytes, str, bool]]:
    secret, now = new_secret(), int(time.time())
    return [
        (secret, BODY, signature(secret, BODY, now), True),
        (secret, BODY + b" ", signature(secret, BODY, now), False),
        (new_secret(), BODY, signature(secret, BODY, now), False),
        (secret, BODY, signature(secret, BODY, now - 3600), False),
    ]


def test_the_python_verifier() -> None:
    scope: dict[str, Any] = {}
    exec(_snippet("python"), scope)  # the README's own code
    for secret, body, header, ok in _cases():
        assert scope["verify"](secret, body, header) is ok


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_javascript_verifier(tmp_path: Path) -> None:
    checks = "\n".join(
        f"console.log(verify({secret!r}, Buffer.from({body.decode()!r}), {header!r})"
        f" === {str(ok).lower()});"
        for secret, body, header, ok in _cases()
    )
    script = tmp_path / "verify.js"
    script.write_text(_snippet("js") + "\n" + checks + "\n")
    out = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["true"] * 4
