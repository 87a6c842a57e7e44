"""POST /v1/audio/transcriptions and /translations end to end with the official `openai` SDK
(CM-15.3): multipart carried to the provider, every response format, priced per second of
audio as the gateway measured it from the file (not as the client says), 413 over the size
limit, 400 for a file that is not audio, failover."""

from __future__ import annotations

import io
from decimal import Decimal

import av
import numpy as np
import openai
import pytest

from gatewayz.api.audio_file import MAX_AUDIO_BYTES, audio_duration
from gatewayz.errors import InvalidRequest
from gatewayz.simulators import Fault
from tests.e2e.harness import Gateway, add_user, fresh_pair
from tests.money.conftest import money, usage_rows

from .conftest import SECOND_PRICE, WHISPER, client, wav


def test_cm_15_3_audio_transcription_returns_text(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1")
    raw = client(gateway, key).audio.transcriptions.with_raw_response.create(
        model=WHISPER, file=("hello.wav", wav(2.5), "audio/wav")
    )
    r = raw.parse()
    assert r.text == "Simulated transcript of hello.wav (40044 bytes)."
    cost = Decimal("2.5") * SECOND_PRICE  # the file's 2.5 s, measured by the gateway
    assert Decimal(raw.headers["x-gatewayz-cost"]) == cost
    [row] = usage_rows(money(gateway, user))
    assert -row["amount_nanos"] == int(cost * 10**9)


def test_the_form_fields_reach_the_provider(gateway: Gateway, sims: tuple) -> None:
    _, key = add_user(gateway, credits_usd="1")
    _, first_sim, _, _ = fresh_pair(gateway, sims, WHISPER)
    r = client(gateway, key).audio.transcriptions.create(
        model=WHISPER,
        file=("a.wav", wav(1.0), "audio/wav"),
        language="de",
        prompt="Namen: Jörg",
        temperature=0.2,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert r.text and r.segments
    [sent] = [q for q in first_sim.requests if "audio" in q.path]
    body = sent.body
    for part in (b'name="language"\r\n\r\nde', "Jörg".encode(), b'name="temperature"\r\n\r\n0.2',
                 b'name="timestamp_granularities[]"\r\n\r\nword', b"RIFF"):  # fmt: skip
        assert part in body


@pytest.mark.parametrize("fmt", ["text", "srt", "vtt"])
def test_text_formats_pass_through_as_text(gateway: Gateway, fmt: str) -> None:
    _, key = add_user(gateway, credits_usd="1")
    raw = client(gateway, key).audio.transcriptions.with_raw_response.create(
        model=WHISPER, file=("a.wav", wav(1.0), "audio/wav"), response_format=fmt
    )
    assert raw.headers["content-type"].startswith("text/plain")
    text = raw.http_response.text
    assert "Simulated transcript" in text
    assert text.startswith({"text": "Simulated", "srt": "1\n", "vtt": "WEBVTT"}[fmt])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK marks translations so
def test_translations_go_to_the_translations_endpoint(gateway: Gateway, sims: tuple) -> None:
    _, key = add_user(gateway, credits_usd="1")
    r = client(gateway, key).audio.translations.create(
        model=WHISPER, file=("a.wav", wav(1.0), "audio/wav")
    )
    assert r.text.startswith("Simulated translation")


def _encoded(fmt: str, codec: str, seconds: float) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=48000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, round(48000 * seconds)), dtype=np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 48000
        for packet in (*stream.encode(frame), *stream.encode(None)):
            container.mux(packet)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "codec"),
    [("mp3", "libmp3lame"), ("ogg", "libopus"), ("webm", "libopus"), ("mp4", "aac")],
)
def test_the_duration_is_read_from_each_accepted_format(fmt: str, codec: str) -> None:
    assert audio_duration(_encoded(fmt, codec, 3.0)) == pytest.approx(3.0, abs=0.05)


def test_a_file_that_is_not_audio_is_a_400_and_costs_nothing(gateway: Gateway, sims: tuple) -> None:
    user, key = add_user(gateway, credits_usd="1")
    with pytest.raises(openai.BadRequestError) as err:
        client(gateway, key).audio.transcriptions.create(
            model=WHISPER, file=("a.wav", b"this is not audio at all" * 10, "audio/wav")
        )
    assert err.value.body["param"] == "file"  # type: ignore[index]
    assert not usage_rows(money(gateway, user))
    assert not [q for s in sims for q in s.requests if "audio" in q.path]


def test_a_png_is_an_unsupported_format() -> None:
    from gatewayz.simulators.formats.openai_media import PNG_1X1

    with pytest.raises(InvalidRequest) as err:
        audio_duration(PNG_1X1)
    assert err.value.code == "unsupported_audio_format"


def test_a_file_over_the_limit_is_a_413(gateway: Gateway) -> None:
    _, key = add_user(gateway, credits_usd="1")
    with pytest.raises(openai.APIStatusError) as err:
        client(gateway, key).audio.transcriptions.create(
            model=WHISPER, file=("big.wav", b"\0" * (MAX_AUDIO_BYTES + 300_000), "audio/wav")
        )
    assert err.value.status_code == 413


def test_no_credits_is_402_and_the_provider_is_never_called(gateway: Gateway, sims: tuple) -> None:
    _, key = add_user(gateway, credits_usd="0")
    with pytest.raises(openai.APIStatusError) as err:
        client(gateway, key).audio.transcriptions.create(
            model=WHISPER, file=("a.wav", wav(1.0), "audio/wav")
        )
    assert err.value.status_code == 402
    assert not [q for s in sims for q in s.requests if "audio" in q.path]


def test_a_failing_provider_fails_over(gateway: Gateway, sims: tuple) -> None:
    user, key = add_user(gateway, credits_usd="1")
    _, first_sim, second, _ = fresh_pair(gateway, sims, WHISPER)
    first_sim.fault(Fault(status=502))
    raw = client(gateway, key).audio.transcriptions.with_raw_response.create(
        model=WHISPER, file=("a.wav", wav(2.0), "audio/wav")
    )
    assert raw.headers["x-gatewayz-provider"] == second
    [row] = usage_rows(money(gateway, user))
    assert -row["amount_nanos"] == 200_000  # 2 s × $0.0001


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"response_format": "docx"}, "response_format"),
        ({"temperature": 2}, "temperature"),
        ({"language": "not a language"}, "language"),
        ({"timestamp_granularities": ["word"]}, "timestamp_granularities"),  # needs verbose_json
    ],
)
def test_bad_fields_are_a_400_naming_them(gateway: Gateway, fields: dict, param: str) -> None:
    _, key = add_user(gateway, credits_usd="1")
    with pytest.raises(openai.BadRequestError) as err:
        client(gateway, key).audio.transcriptions.create(
            model=WHISPER, file=("a.wav", wav(1.0), "audio/wav"), **fields
        )
    assert err.value.body["param"] == param  # type: ignore[index]
