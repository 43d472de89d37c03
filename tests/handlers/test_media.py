"""Photos are checked before they are decoded: a tiny file claiming a huge picture is refused politely,
the dialogue goes on, and the limits come from the settings."""

from __future__ import annotations

import io
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from handlers.errors import DomainError
from handlers.media import MAX_INPUT_PIXELS, clean_image
from handlers.messages import Text
from tests.harness import Harness, huge_png, jpeg_with_gps


async def _at_photos(bot: Harness, who: str = "wang") -> None:
    await bot.say(who, "/report")
    await bot.press(who, "v1:rpt:cat:fire")
    await bot.press(who, "v1:rpt:urg:normal")
    assert await bot.say(who, "电瓶车在楼道里充电") == ["report.ask_photos"]


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("wang", building="3")
    yield harness
    await harness.close()


def test_the_crafted_bomb_is_what_the_issue_measured() -> None:
    bomb = huge_png()
    assert len(bomb) < 12_000
    with Image.open(io.BytesIO(bomb)) as image:  # the header only: nothing decoded here either
        assert image.size == (8900, 8900) and image.format == "PNG"
    assert MAX_INPUT_PIXELS < 8900 * 8900


def test_a_huge_picture_is_refused_from_its_header() -> None:
    with pytest.raises(DomainError) as refused:
        clean_image(huge_png())
    assert refused.value.key == "error.photo_too_many_pixels"
    assert refused.value.params == {"max_mp": "20"}
    # Over twice Pillow's own default limit too: ours answers first, with the same polite refusal.
    with pytest.raises(DomainError) as beyond:
        clean_image(huge_png(20_000, 20_000))
    assert beyond.value.key == "error.photo_too_many_pixels"


def test_a_picture_within_the_limit_is_decoded_and_re_encoded() -> None:
    image = clean_image(huge_png(4000, 4000), max_pixels=16_000_000)
    assert (image.width, image.height) == (2048, 2048) and image.data[:2] == b"\xff\xd8"


def test_bytes_are_counted_before_anything_is_opened() -> None:
    with pytest.raises(DomainError) as refused:
        clean_image(b"\x89PNG" + bytes(2048), max_bytes=1024)
    assert refused.value.key == "error.photo_too_large" and refused.value.params == {"max_mb": "0.000977"}


def test_formats_phones_do_not_send_are_not_decoded() -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="TIFF")
    with pytest.raises(DomainError) as refused:
        clean_image(out.getvalue())
    assert refused.value.key == "error.photo_unreadable"


async def test_a_decompression_bomb_in_a_report_is_refused_and_the_draft_goes_on(bot: Harness) -> None:
    await _at_photos(bot)
    assert await bot.photo("wang", jpeg_with_gps()) == ["report.photo_received"]
    assert await bot.photo("wang", huge_png()) == ["error.photo_too_many_pixels"]
    assert bot.last is not None and bot.last.replies[0].text == Text(
        "error.photo_too_many_pixels", {"max_mp": "20"}
    )
    # Nothing of the bomb was kept, the first photo was, and the next photo is taken.
    draft = await bot.repos_do(lambda r: r.conversations.get(1, "console"))
    assert draft.step == "photos" and len(draft.data["photos"]) == 1
    assert len(list((bot.settings.media_dir).rglob("*.jpg"))) == 1
    assert await bot.photo("wang", jpeg_with_gps()) == ["report.photo_received"]
    draft = await bot.repos_do(lambda r: r.conversations.get(1, "console"))
    assert len(draft.data["photos"]) == 2


async def test_the_limits_come_from_the_settings(database_url: str, tmp_path: Path) -> None:
    harness = Harness(database_url, tmp_path)
    harness.settings = harness.settings.model_copy(
        update={"max_photo_pixels": 50_000, "max_photo_bytes": 4096}
    )
    bot = await harness.start()
    try:
        await bot.person("wang", building="3")
        await _at_photos(bot)
        small = io.BytesIO()
        Image.new("RGB", (200, 200), (10, 200, 10)).save(small, format="JPEG")
        assert len(small.getvalue()) < 4096
        assert await bot.photo("wang", small.getvalue()) == ["report.photo_received"]
        big = io.BytesIO()
        Image.new("RGB", (300, 200), (10, 200, 10)).save(big, format="JPEG")  # 60,000 pixels
        assert await bot.photo("wang", big.getvalue()) == ["error.photo_too_many_pixels"]
        noisy = io.BytesIO()  # 10,000 pixels of noise: few pixels, many bytes
        Image.frombytes("RGB", (100, 100), random.Random(1).randbytes(30_000)).save(noisy, "JPEG", quality=95)
        assert len(noisy.getvalue()) > 4096
        assert await bot.photo("wang", noisy.getvalue()) == ["error.photo_too_large"]
        assert bot.last is not None and bot.last.replies[0].text.params == {"max_mb": "0.00391"}
    finally:
        await bot.close()
