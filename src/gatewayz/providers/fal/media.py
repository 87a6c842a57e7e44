"""Image generation on fal: the image app named by the model's native id (e.g.
`fal-ai/flux/schnell`) on fal's synchronous endpoint, `POST https://fal.run/{app}` with
`{"prompt", "num_images", "image_size": {"width", "height"}}` → `{"images": [{"url", "width",
"height", "content_type"}], "seed", ...}`.

fal answers links to its CDN. For `response_format: b64_json` the request sets fal's
`sync_mode`, with which fal returns each image inline as a data URI
(`data:image/png;base64,...`) instead of storing it; its base64 part is the answer. fal's
apps have no quality levels or styles: `quality` other than standard, `style`, and any field
OpenAI's request does not have are refused by name before anything is sent (`Unsupported`:
failover tries the next provider). `user` (OpenAI's end-user id) is not sent.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from gatewayz.canonical.media import Image, ImageRequest, ImageResponse
from gatewayz.errors import Unsupported
from gatewayz.providers import urls
from gatewayz.providers.fal.codec import bad_upstream

_DATA_URI = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,(.*)", re.DOTALL)


def image_path(native_model: str) -> str:
    """`/{app id}` (its `/`s kept, every other character escaped, dot segments refused)."""
    return "/" + urls.segment(native_model.strip("/"), keep="/")


def images_body(req: ImageRequest, provider: str) -> bytes:
    if req.style is not None:
        raise Unsupported(f"{provider} does not support 'style' for images.", param="style")
    if req.quality not in (None, "standard"):
        raise Unsupported(
            f"{provider} has no image quality levels ('{req.quality}').", param="quality"
        )
    for name in req.extra:
        raise Unsupported(f"{provider} does not support the field '{name}'.", param=name)
    body: dict[str, Any] = {"prompt": req.prompt, "num_images": req.n}
    if req.size is not None:  # "WxH", checked by the edge
        width, height = req.size.split("x")
        body["image_size"] = {"width": int(width), "height": int(height)}
    if req.response_format == "b64_json":
        body["sync_mode"] = True  # the images inline, as data URIs
    return orjson.dumps(body)


def parse_images(data: bytes, provider: str, n: int, response_format: str) -> ImageResponse:
    """The images returned (at most `n`). Asked for base64, an image that came back as a link
    (an app that ignores `sync_mode`) is a malformed answer: it is not what was asked for."""
    try:
        raw = orjson.loads(data)
        items = raw["images"]
        if not isinstance(items, list):
            raise TypeError("images is not a list")
        images = [_image(item, response_format) for item in items[:n]]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise bad_upstream(provider, exc) from None
    return ImageResponse(images)


def _image(item: Any, response_format: str) -> Image:
    url = item["url"]
    if not isinstance(url, str) or not url:
        raise TypeError("an image has no url")
    if response_format != "b64_json":
        return Image(url=url)
    m = _DATA_URI.fullmatch(url)
    if m is None:
        raise ValueError("an image is a link, not the data URI sync_mode asks for")
    try:
        base64.b64decode(m.group(1), validate=True)
    except binascii.Error:
        raise ValueError("an image's data URI is not base64") from None
    return Image(b64_json=m.group(1))


async def generate_images(
    post: Callable[[str, bytes], Awaitable[bytes]],
    req: ImageRequest,
    native_model: str,
    provider: str,
) -> ImageResponse:
    """`post(path, body)` sends the call and returns the answer's body (the adapter's)."""
    body = images_body(req, provider)
    data = await post(image_path(native_model), body)
    return parse_images(data, provider, req.n, req.response_format)
