"""The Files and Batches objects in OpenAI's shapes (batches/service.py): what an object does not
have is left out, not null, where OpenAI's schema types the field (string, integer, object) and
does not let it be null; the SDKs read a missing field as None."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gatewayz.batches.service import TIMES, _metadata, _page, batch_object, file_object
from gatewayz.errors import InvalidRequest

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
COUNTS = {
    "completed": 0,
    "failed": 0,
    "usage": {"input": 0, "cached": 0, "output": 0, "reasoning": 0},
}


def _batch_row(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "batch_1",
        "endpoint": "/v1/chat/completions",
        "errors": None,
        "input_file_id": "file-1",
        "completion_window": "24h",
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "total": 2,
        "meta": None,
    }
    row.update(dict.fromkeys(TIMES))
    row.update(created_at=NOW, expires_at=NOW)
    row.update(fields)
    return row


def test_a_new_batch_leaves_out_what_it_does_not_have_yet() -> None:
    out = batch_object(_batch_row(), COUNTS)
    absent = {"errors", "output_file_id", "error_file_id", *TIMES} - {"created_at", "expires_at"}
    assert not absent & set(out)
    assert None not in [v for k, v in out.items() if k != "metadata"]
    assert out["created_at"] == out["expires_at"] == int(NOW.timestamp())
    assert out["metadata"] is None  # Metadata: an object or null, as the schema has it


def test_an_ended_batch_has_its_files_and_times() -> None:
    row = _batch_row(status="completed", output_file_id="file-2", completed_at=NOW, errors={})
    out = batch_object(row, COUNTS)
    assert (out["output_file_id"], out["completed_at"]) == ("file-2", int(NOW.timestamp()))
    assert out["errors"] == {} and "error_file_id" not in out


def test_a_file_has_no_status_details() -> None:
    row = {"id": "file-1", "bytes": 3, "created_at": NOW, "filename": "in.jsonl"}
    out = file_object({**row, "purpose": "batch"})
    assert "status_details" not in out and out["status"] == "processed"


def test_an_empty_page_has_no_first_or_last_id() -> None:
    assert _page([], False) == {"object": "list", "data": [], "has_more": False}
    page = _page([{"id": "a"}, {"id": "b"}], True)
    assert (page["first_id"], page["last_id"], page["has_more"]) == ("a", "b", True)


@pytest.mark.parametrize(
    "metadata", [{"": "x"}, {"k" * 64: "v" * 512}, {str(i): "" for i in range(16)}]
)
def test_metadata_within_openais_limits_is_kept(metadata: dict[str, str]) -> None:
    assert _metadata(metadata) == metadata


@pytest.mark.parametrize(
    "metadata", [{"k" * 65: "v"}, {"k": "v" * 513}, {str(i): "" for i in range(17)}, {"k": 1}, []]
)
def test_metadata_over_openais_limits_is_refused(metadata: Any) -> None:
    with pytest.raises(InvalidRequest) as e:
        _metadata(metadata)
    assert e.value.param == "metadata"
