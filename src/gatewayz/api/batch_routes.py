"""OpenAI's Files and Batch APIs: `POST/GET /v1/files`, `GET/DELETE /v1/files/{id}`,
`GET /v1/files/{id}/content`; `POST/GET /v1/batches`, `GET /v1/batches/{id}`,
`POST /v1/batches/{id}/cancel` (the work: gatewayz.batches). The caller's key needs the `chat`
permission, as for chat; a batch's lines later run as that key.

An upload is a multipart form (`file`, `purpose`) read as it streams in, the file part spooled,
never held whole in memory; more than `GATEWAYZ_BATCH_MAX_FILE_BYTES` is a 413. `LINE_KINDS` is
how a batch's lines are read and answered: this edge's OpenAI dialects for chat and embeddings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from gatewayz.api.deps import allowed, services_of
from gatewayz.api.media_requests import parse_embeddings
from gatewayz.api.media_routes import Embeddings
from gatewayz.api.openai_routes import OPENAI
from gatewayz.batches.lines import LineKind
from gatewayz.batches.service import file_object
from gatewayz.canonical.bounds import json_object
from gatewayz.errors import InvalidRequest, PayloadTooLarge
from gatewayz.security.auth import Principal

router = APIRouter(prefix="/v1", tags=["batches"])
Caller = Annotated[Principal, Depends(allowed("chat"))]
FORM_SLACK = 64 * 1024  # the form's own bytes around the file: boundaries, headers, `purpose`

LINE_KINDS = {
    kind.endpoint: kind
    for kind in (
        LineKind("/v1/chat/completions", OPENAI.parse, OPENAI.render),
        LineKind("/v1/embeddings", parse_embeddings, Embeddings().render, media=True),
    )
}


def _int(request: Request, name: str, default: int, most: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= most:
        raise InvalidRequest(f"'{name}' must be an integer from 1 to {most}.", param=name)
    return value


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The file is larger than the limit of {limit} bytes.")


async def _form(request: Request, limit: int) -> FormData:
    """The multipart form, read as it arrives (at most the file limit and the form's bytes)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest(
            "Upload a file as multipart/form-data: the 'file' field and 'purpose'.", param="file"
        )
    bound = limit + FORM_SLACK
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > bound:
        raise _too_large(limit)

    async def counted() -> AsyncIterator[bytes]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > bound:
                raise _too_large(limit)
            yield chunk

    parser = MultiPartParser(
        request.headers, counted(), max_files=1, max_fields=8, max_part_size=FORM_SLACK
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest(f"Invalid multipart body: {exc.message}", param="file") from None


# ---- files -------------------------------------------------------------------------------------
@router.post("/files")
async def upload_file(request: Request, p: Caller) -> dict[str, Any]:
    s = services_of(request)
    limit = s.settings.batch_max_file_bytes
    form = await _form(request, limit)
    try:
        purpose, upload = form.get("purpose"), form.get("file")
        if not isinstance(purpose, str) or not purpose:
            raise InvalidRequest("'purpose' is required: 'batch'.", param="purpose")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("'file' is required: the JSONL file of requests.", param="file")
        if upload.size is not None and upload.size > limit:
            raise _too_large(limit)
        return await s.batches.upload(p.user_id, upload.file, upload.filename or "", purpose)
    finally:
        await form.close()


@router.get("/files")
async def list_files(request: Request, p: Caller) -> dict[str, Any]:
    q = request.query_params
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("'order' must be 'asc' or 'desc'.", param="order")
    limit = _int(request, "limit", 10_000, 10_000)
    batches = services_of(request).batches
    return await batches.list_files(p.user_id, limit, order, q.get("purpose"), q.get("after"))


@router.get("/files/{file_id}")
async def get_file(request: Request, p: Caller, file_id: str) -> dict[str, Any]:
    return file_object(await services_of(request).batches.file(p.user_id, file_id))


@router.get("/files/{file_id}/content")
async def file_content(request: Request, p: Caller, file_id: str) -> FileResponse:
    batches = services_of(request).batches
    row = await batches.file(p.user_id, file_id)
    return FileResponse(
        batches.content(row), media_type="application/jsonl", filename=row["filename"]
    )


@router.delete("/files/{file_id}")
async def delete_file(request: Request, p: Caller, file_id: str) -> dict[str, Any]:
    return await services_of(request).batches.delete_file(p.user_id, file_id)


# ---- batches -----------------------------------------------------------------------------------
@router.post("/batches")
async def create_batch(request: Request, p: Caller) -> dict[str, Any]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > FORM_SLACK:
            raise PayloadTooLarge(f"Request body too large: the limit is {FORM_SLACK} bytes.")
    return await services_of(request).batches.create(p, json_object(raw))


@router.get("/batches")
async def list_batches(request: Request, p: Caller) -> dict[str, Any]:
    limit = _int(request, "limit", 20, 100)
    after = request.query_params.get("after")
    return await services_of(request).batches.list(p.user_id, limit, after)


@router.get("/batches/{batch_id}")
async def get_batch(request: Request, p: Caller, batch_id: str) -> dict[str, Any]:
    return await services_of(request).batches.get(p.user_id, batch_id)


@router.post("/batches/{batch_id}/cancel")
async def cancel_batch(request: Request, p: Caller, batch_id: str) -> dict[str, Any]:
    return await services_of(request).batches.cancel(p.user_id, batch_id)
