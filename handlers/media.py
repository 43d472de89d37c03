"""Photos kept with the reports they belong to.

Every photo is re-encoded: that drops EXIF (and with it GPS position, camera
serial, owner name) that phones embed, and caps the size so any channel can
show it later. Files are named by content hash, so a photo sent twice is kept once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from handlers.errors import DomainError
from storage.repositories import Repos

log = logging.getLogger(__name__)

MAX_SIDE = 2048
MAX_INPUT_BYTES = 20 * 1024 * 1024
# Decompression bombs: a tiny file claiming gigapixels.
Image.MAX_IMAGE_PIXELS = 40_000_000


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    sha256: str
    width: int
    height: int


def clean_image(raw: bytes) -> CleanImage:
    """Decode, apply the EXIF orientation, and re-encode as a metadata-free JPEG."""
    if len(raw) > MAX_INPUT_BYTES:
        raise DomainError("error.photo_too_large")
    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
            upright = upright.convert("RGB")
            upright.thumbnail((MAX_SIDE, MAX_SIDE))
            out = io.BytesIO()
            # No exif=, icc_profile= or comment: only pixels survive.
            upright.save(out, format="JPEG", quality=85, optimize=True)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as exc:
        raise DomainError("error.photo_unreadable") from exc
    data = out.getvalue()
    return CleanImage(data, hashlib.sha256(data).hexdigest(), upright.width, upright.height)


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, relative: str) -> Path:
        return self.root / relative

    async def save_photo(self, repos: Repos, raw: bytes, now: datetime) -> int:
        image = await asyncio.to_thread(clean_image, raw)
        relative = f"{image.sha256[:2]}/{image.sha256}.jpg"
        target = self.root / relative
        if not target.exists():
            try:
                await asyncio.to_thread(_write_atomically, target, image.data)
            except OSError as error:
                # A full disk (ENOSPC) or a folder gone read-only: the sender is told, and the
                # rest of what they were doing (the draft, the report) is kept as it was.
                log.error("photo not stored", extra={"errno": error.errno, "media_dir": str(self.root)})
                with contextlib.suppress(OSError):
                    target.with_suffix(".tmp").unlink(missing_ok=True)
                raise DomainError("error.photo_not_stored") from error
        return await repos.media.add(
            image.sha256, "image/jpeg", image.width, image.height, len(image.data), relative, now
        )

    async def read(self, repos: Repos, media_id: int) -> bytes | None:
        media = await repos.media.get(media_id)
        if media is None:
            return None
        path = self.root / media.path
        return await asyncio.to_thread(path.read_bytes) if path.exists() else None


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    temporary.write_bytes(data)
    temporary.replace(target)
