"""OpenAI's embeddings and image bodies read at the edge (api/media_requests.py): `user` is any
string up to 256 characters, an empty one included, as chat and responses take it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from gatewayz.api.media_requests import parse_embeddings, parse_images
from gatewayz.errors import InvalidRequest

PARSERS: dict[str, tuple[Callable[[bytes], Any], dict[str, Any]]] = {
    "embeddings": (parse_embeddings, {"model": "m", "input": "hi"}),
    "images": (parse_images, {"model": "m", "prompt": "a cat"}),
}


@pytest.mark.parametrize("kind", sorted(PARSERS))
@pytest.mark.parametrize("user", ["", "u", "u" * 256])
def test_a_user_of_up_to_256_characters_is_taken(kind: str, user: str) -> None:
    parse, body = PARSERS[kind]
    assert parse(orjson.dumps({**body, "user": user})).user == user


@pytest.mark.parametrize("kind", sorted(PARSERS))
@pytest.mark.parametrize("user", ["u" * 257, 5])
def test_another_user_is_refused_by_name(kind: str, user: Any) -> None:
    parse, body = PARSERS[kind]
    with pytest.raises(InvalidRequest) as e:
        parse(orjson.dumps({**body, "user": user}))
    assert e.value.param == "user" and "0 to 256" in e.value.message


def test_other_strings_still_need_a_character() -> None:
    with pytest.raises(InvalidRequest) as e:
        parse_embeddings(orjson.dumps({"model": "", "input": "hi"}))
    assert e.value.param == "model"
