"""Reading the database in Telegram tests."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from bot.app import App
from storage import repo
from storage.models import User


async def find_user(app: App, user_id: int) -> User | None:
    async with app.db.session() as session:
        query = select(User).where(
            col(User.channel) == "telegram", col(User.external_id) == str(user_id)
        )
        return (await session.execute(query)).scalar_one_or_none()


async def position(app: App, user_id: int) -> str:
    """The person's current `dialog.state` ("none" when idle)."""
    user = await find_user(app, user_id)
    assert user is not None
    assert user.id is not None
    async with app.db.session() as session:
        _, data = await repo.load_conversation(
            session, user_id=user.id, cipher=app.db.cipher, lock=False
        )
        await session.commit()
    stack: list[dict[str, Any]] = data.get("stack", [])
    return f"{stack[-1]['dialog']}.{stack[-1]['state']}" if stack else "none"


async def entries(app: App, user_id: int) -> list[dict[str, Any]]:
    user = await find_user(app, user_id)
    assert user is not None
    assert user.id is not None
    async with app.db.session() as session:
        found = await repo.list_entries(session, user_id=user.id)
        return [{"status": e.status, **repo.entry_answers(e, cipher=app.db.cipher)} for e in found]
