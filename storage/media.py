"""Media: photos people send, stored once per content hash."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from storage import schema as t
from storage.models import Media
from storage.rows import Repo, to_model


class MediaRepo(Repo):
    async def add(
        self, sha256: str, mime: str, width: int, height: int, size: int, path: str, now: datetime
    ) -> int:
        existing = (await self.c.execute(sa.select(t.media.c.id).where(t.media.c.sha256 == sha256))).scalar()
        if existing is not None:
            return int(existing)
        return int(
            (
                await self.c.execute(
                    t.media.insert()
                    .values(
                        sha256=sha256,
                        mime=mime,
                        width=width,
                        height=height,
                        size=size,
                        path=path,
                        created_at=now,
                    )
                    .returning(t.media.c.id)
                )
            ).scalar_one()
        )

    async def get(self, media_id: int) -> Media | None:
        row = (await self.c.execute(sa.select(t.media).where(t.media.c.id == media_id))).first()
        return to_model(Media, row)
