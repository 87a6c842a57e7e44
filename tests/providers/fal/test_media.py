"""fal image generation (`POST https://fal.run/{app}`): the adapter's `generate_images` against
the simulator's fal image apps, and `client.images.generate` through a gateway whose fal
provider points at it."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from gatewayz.canonical.media import ImageRequest, ImageResponse
from gatewayz.errors import RateLimited, Unsupported, UpstreamUnavailable
from gatewayz.providers.fal import Adapter
from gatewayz.providers.provider import Provider
from gatewayz.providers.transport import HttpPool
from gatewayz.simulators import Fault, Simulator
from gatewayz.simulators.formats.fal import IMAGE_HOST
from gatewayz.simulators.formats.openai_media import PNG_1X1
from tests.e2e.harness import Gateway, gateway_settings, set_price, start_gateway

KEY = "fal-test-key"
APP = "fal-ai/flux/schnell"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key=KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture(autouse=True)
def _clean(sim: Simulator) -> None:
    sim.clear()


def _images(sim: Simulator, req: ImageRequest, model: str = APP) -> ImageResponse:
    async def run() -> ImageResponse:
        base = f"http://127.0.0.1:{sim.port}"
        pool = HttpPool(base)
        try:
            provider = Provider("fal", "fal", "fal", base, auth="none", api_key=KEY)
            return await Adapter(provider, pool).generate_images(req, model)
        finally:
            await pool.close()

    return asyncio.run(run())


def _sent(sim: Simulator, app: str = APP) -> list[dict[str, Any]]:
    calls = [r for r in sim.requests if r.path == "/" + app]
    assert all(r.headers["authorization"] == f"Key {KEY}" for r in calls)
    return [r.json for r in calls]


def test_images_as_links(sim: Simulator) -> None:
    req = ImageRequest(model="m", prompt="a red fox", n=2, size="512x768", user="u-1")
    out = _images(sim, req)
    assert len(out.images) == 2
    assert all(i.url and i.url.startswith(IMAGE_HOST + "/") for i in out.images)
    assert [i.b64_json for i in out.images] == [None, None]
    assert _sent(sim) == [
        {"prompt": "a red fox", "num_images": 2, "image_size": {"width": 512, "height": 768}}
    ]


def test_b64_json_uses_sync_mode_data_uris(sim: Simulator) -> None:
    out = _images(sim, ImageRequest(model="m", prompt="p", response_format="b64_json"))
    assert [(i.url, i.b64_json) for i in out.images] == [(None, base64.b64encode(PNG_1X1).decode())]
    assert _sent(sim) == [{"prompt": "p", "num_images": 1, "sync_mode": True}]


def test_at_most_n_images_are_kept(sim: Simulator) -> None:
    links = [{"url": f"https://x.invalid/{i}.png"} for i in range(3)]
    sim.fault(Fault(status=200, body={"images": links}))
    out = _images(sim, ImageRequest(model="m", prompt="p", n=2, quality="standard"))
    assert [i.url for i in out.images] == ["https://x.invalid/0.png", "https://x.invalid/1.png"]


@pytest.mark.parametrize(
    ("req", "model", "param"),
    [
        (ImageRequest(model="m", prompt="p", quality="hd"), APP, "quality"),
        (ImageRequest(model="m", prompt="p", style="natural"), APP, "style"),
        (ImageRequest(model="m", prompt="p", extra={"seed": 3}), APP, "seed"),
        (ImageRequest(model="m", prompt="p"), "fal-ai/../admin", "model"),
    ],
)
def test_unsupported_is_refused_before_sending(
    sim: Simulator, req: ImageRequest, model: str, param: str
) -> None:
    with pytest.raises(Unsupported) as e:
        _images(sim, req, model)
    assert e.value.param == param and e.value.failover
    assert sim.requests == []


def test_error_status(sim: Simulator) -> None:
    sim.fault(Fault(status=429, retry_after="4"))
    with pytest.raises(RateLimited) as e:
        _images(sim, ImageRequest(model="m", prompt="p"))
    assert e.value.headers == {"Retry-After": "4"}


@pytest.mark.parametrize(
    ("fault", "fmt"),
    [
        (Fault(malformed=True), "url"),
        (Fault(drop_after_chunks=0), "url"),
        (Fault(status=200, body={"images": [{"width": 1}]}), "url"),
        (Fault(status=200, body={"images": {"url": "x"}}), "url"),
        # asked for base64 (sync_mode), answered a link: not what was asked for
        (Fault(status=200, body={"images": [{"url": "https://x.invalid/a.png"}]}), "b64_json"),
        (Fault(status=200, body={"images": [{"url": "data:image/png;base64,%%%"}]}), "b64_json"),
    ],
)
def test_malformed_answer_is_the_providers_failure(sim: Simulator, fault: Fault, fmt: str) -> None:
    sim.fault(fault)
    with pytest.raises(UpstreamUnavailable):
        _images(sim, ImageRequest(model="m", prompt="p", response_format=fmt))


def test_delay(sim: Simulator) -> None:
    sim.fault(Fault(delay_s=0.3))
    start = time.monotonic()
    assert len(_images(sim, ImageRequest(model="m", prompt="p")).images) == 1
    assert time.monotonic() - start >= 0.3


# ---------------------------------------------------------------- through the gateway
@pytest.fixture(scope="module")
def gw(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    env = {"fal": {"base_url": f"http://127.0.0.1:{sim.port}", "api_key": KEY}}
    g = start_gateway(gateway_settings(tmp_path_factory.mktemp("gw"), sim, provider_env=env), sim)
    set_price(g, f"fal/{APP}", "fal", mode="image", image="0.04")
    yield g
    g.stop()


def test_openai_sdk_images_through_the_gateway(gw: Gateway, sim: Simulator) -> None:
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    r = client.images.generate(model=f"fal/{APP}", prompt="a lighthouse", n=2, size="1024x1024")
    assert r.data is not None and len(r.data) == 2
    assert all(d.url and d.url.startswith(IMAGE_HOST + "/") for d in r.data)
    assert _sent(sim) == [
        {"prompt": "a lighthouse", "num_images": 2, "image_size": {"width": 1024, "height": 1024}}
    ]
    b = client.images.generate(model=f"fal/{APP}", prompt="x", response_format="b64_json")
    assert b.data is not None and base64.b64decode(b.data[0].b64_json or "") == PNG_1X1
