"""Charts travel through the outbox as descriptions and are drawn in the reader's language."""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

from PIL import Image

from bot.charts import chart_photos
from bot.i18n import Translator
from handlers.messages import BarSeries, Chart, Lines, Reply, Text, Verbatim, reply_from_json, reply_to_json

CHART = Chart(
    title=Lines((Text("digest.chart_title"), Verbatim("2026-05-18 08:00 – 2026-05-25 08:00"))),
    y_label=Text("digest.chart_y_label"),
    categories=(Verbatim("第一网格"), Text("digest.no_grid")),
    category_keys=("g1", "-"),
    series=(
        BarSeries(Text("state.submitted"), "#d62728", (2, 0)),
        BarSeries(Text("state.resolved"), "#2ca02c", (1, 3)),
    ),
)


def test_a_chart_survives_the_outbox() -> None:
    reply = Reply(Text("digest.text"), chart=CHART)
    assert reply_from_json(reply_to_json(reply)) == reply


async def test_a_chart_is_drawn_as_a_photo_in_every_language() -> None:
    translator = Translator.load("zh_CN", ZoneInfo("Asia/Shanghai"))
    for language in ("zh_CN", "en", "zh_TW"):
        [png] = await chart_photos(translator, language, Reply(Text("digest.text"), chart=CHART))
        with Image.open(io.BytesIO(png)) as image:
            assert (image.format, image.size) == ("PNG", (800, 450))
    assert await chart_photos(translator, "zh_CN", Reply(Text("digest.text"))) == []
