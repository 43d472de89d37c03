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
from storage.files import private_dir, write_private
from storage.repositories import Repos

log = logging.getLogger(__name__)

MAX_SIDE = 2048
# The defaults of SHOUWANG_MAX_PHOTO_BYTES and SHOUWANG_MAX_PHOTO_PIXELS.
MAX_INPUT_BYTES = 20 * 1024 * 1024
MAX_INPUT_PIXELS = 20_000_000
# Phones and both platforms send these; the rest of Pillow's dozens of decoders are attack surface.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
# Decompression bombs (a 10 KB PNG claiming 8,900 × 8,900 pixels decodes to hundreds of MB) are
# refused by clean_image from the header, with the configured limit, before anything is decoded.
# Pillow's own process-wide check would come first and cannot be configured per store: it only
# warns up to twice its limit (the image is then decoded) and raises above, so it is off.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    sha256: str
    width: int
    height: int


def clean_image(
    raw: bytes, max_bytes: int = MAX_INPUT_BYTES, max_pixels: int = MAX_INPUT_PIXELS
) -> CleanImage:
    """Check the size, decode, apply the EXIF orientation, and re-encode as a metadata-free JPEG."""
    if len(raw) > max_bytes:
        raise DomainError("error.photo_too_large", max_mb=_megabytes(max_bytes))
    try:
        # open() reads the header only: the size is known before a pixel is decoded.
        with Image.open(io.BytesIO(raw), formats=FORMATS) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise DomainError("error.photo_too_many_pixels", max_mp=_megapixels(max_pixels))
            image.load()
            upright = ImageOps.exif_transpose(image)
            upright = upright.convert("RGB")
            upright.thumbnail((MAX_SIDE, MAX_SIDE))
            out = io.BytesIO()
            # No exif=, icc_profile= or comment: only pixels survive.
            upright.save(out, format="JPEG", quality=85, optimize=True)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DomainError("error.photo_unreadable") from exc
    data = out.getvalue()
    return CleanImage(data, hashlib.sha256(data).hexdigest(), upright.width, upright.height)


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.3g}"


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:.3g}"


class MediaStore:
    def __init__(
        self, root: Path, *, max_bytes: int = MAX_INPUT_BYTES, max_pixels: int = MAX_INPUT_PIXELS
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels

    def path_of(self, relative: str) -> Path:
        return self.root / relative

    async def save_photo(self, repos: Repos, raw: bytes, now: datetime) -> int:
        image = await asyncio.to_thread(clean_image, raw, self.max_bytes, self.max_pixels)
        relative = f"{image.sha256[:2]}/{image.sha256}.jpg"
        target = self.root / relative
        if not target.exists():
            try:
                await asyncio.to_thread(self._write, target, image.data)
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

    async def forget(self, relative_paths: list[str]) -> None:
        """Delete stored files (erased or past retention); one already gone is no error."""
        for relative in relative_paths:
            await asyncio.to_thread((self.root / relative).unlink, missing_ok=True)

    async def read(self, repos: Repos, media_id: int) -> bytes | None:
        media = await repos.media.get(media_id)
        if media is None:
            return None
        path = self.root / media.path
        return await asyncio.to_thread(path.read_bytes) if path.exists() else None

    def _write(self, target: Path, data: bytes) -> None:
        # The folder is the bot's own: one made by an earlier version (0755) is tightened too.
        private_dir(self.root, tighten=True)
        write_private(target, data)
