"""What the admin user routes do (`api/admin_routes.py`): list users, change a user's role.
Each function is one transaction on the database it is given."""

from __future__ import annotations

from typing import Any

from gatewayz.storage import users
from gatewayz.storage.db import Database


async def list_users(db: Database, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """A page of users (oldest first) and the total count."""
    async with db.begin() as conn:
        return await users.list_users(conn, limit=limit, offset=offset)


async def change_role(db: Database, user_id: str, role: str) -> str | None:
    """Set the user's role; the previous one, or None for an unknown user."""
    async with db.begin() as conn:
        return await users.set_user_role(conn, user_id, role)
