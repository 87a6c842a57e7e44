"""An audio upload as the transcription endpoints take it: a multipart form (OpenAI's shape)
read with Starlette's parser, and the audio's duration read from the file itself by FFmpeg's
demuxers (PyAV) — the price of a transcription is per second, so the client's word for it is
never taken. Formats are OpenAI's list (flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav, webm); a file
whose container is anything else, or that holds no audio, is a 400 naming what was found."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

import av
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.types import Scope

from gatewayz.errors import InvalidRequest

MAX_AUDIO_BYTES = 25 * 1024 * 1024  # OpenAI's limit for one file
MAX_AUDIO_SECONDS = 4 * 3600  # longer is refused (a hold must bound it; no provider takes more)
# FFmpeg's demuxer names for the formats OpenAI accepts.
DEMUXERS = {"flac", "mp3", "mov,mp4,m4a,3gp,3g2,mj2", "mpeg", "ogg", "wav", "matroska,webm"}
_FIELD_BYTES = 64 * 1024


@dataclass(slots=True)
class AudioFile:
    data: bytes
    filename: str
    content_type: str
    duration_s: float


async def read_form(scope: Scope, body: bytes) -> FormData:
    """The multipart form of `body` (one file at most); 400 when it is not one."""
    headers = Headers(scope=scope)
    if not headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest(
            "This endpoint takes multipart/form-data (the audio as the 'file' field).",
            param="file",
        )

    async def stream():  # type: ignore[no-untyped-def]
        yield body

    parser = MultiPartParser(
        headers, stream(), max_files=1, max_fields=32, max_part_size=_FIELD_BYTES
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest(f"Invalid multipart body: {exc.message}", param="file") from None


async def audio_of(form: FormData) -> AudioFile:
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidRequest("The audio file is required (the 'file' field).", param="file")
    data = await upload.read()
    await upload.close()
    if not data:
        raise InvalidRequest("The audio file is empty.", param="file")
    duration = await asyncio.to_thread(audio_duration, data)
    name = (upload.filename or "audio")[:256]
    content_type = (upload.content_type or "application/octet-stream")[:128]
    return AudioFile(data, name, content_type, duration)


def audio_duration(data: bytes) -> float:
    """Seconds of audio in `data`: the container's duration, else the sum of the audio
    stream's packet durations (demuxed, not decoded)."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            fmt = container.format.name
            if fmt not in DEMUXERS:
                raise InvalidRequest(
                    f"Unsupported audio format '{fmt}': send flac, mp3, mp4, mpeg, mpga, m4a, "
                    "ogg, wav or webm.",
                    code="unsupported_audio_format",
                    param="file",
                )
            streams = container.streams.audio
            if not streams:
                raise InvalidRequest("The file holds no audio stream.", param="file")
            seconds = _seconds(container, streams[0])
    except InvalidRequest:
        raise
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise InvalidRequest(
            f"The file could not be read as audio ({type(exc).__name__}).",
            code="unsupported_audio_format",
            param="file",
        ) from None
    if not 0 < seconds <= MAX_AUDIO_SECONDS:
        raise InvalidRequest(
            f"The audio lasts {seconds:.1f} s: between 0 and {MAX_AUDIO_SECONDS} s are accepted.",
            param="file",
        )
    return seconds


def _seconds(container: av.container.InputContainer, stream: av.audio.AudioStream) -> float:
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    total = 0
    for packet in container.demux(stream):
        if packet.duration:
            total += packet.duration
    return float(total * stream.time_base) if stream.time_base is not None else 0.0
