"""Charts described in replies (handlers.messages.Chart), drawn as PNG in the reader's language.

Drawing is pixels, so it happens here, on the channel side, with the same
translator that renders the words of the message. matplotlib is imported when
the first chart is drawn (it takes a second), and each chart gets a Figure of
its own, so no pyplot state is shared between threads.
"""

from __future__ import annotations

import asyncio
import io
from functools import cache

from bot.i18n import Translator
from handlers.messages import Chart, Reply

SIZE_INCHES = (8.0, 4.5)
DPI = 100
# Characters a font must have to draw Chinese labels.
_CJK_PROBE = "网格上报数办结"


@cache
def cjk_font() -> str | None:
    """The name of an installed font that has Chinese characters, if there is one."""
    from matplotlib import font_manager, ft2font

    for entry in font_manager.fontManager.ttflist:
        if entry.name.startswith("Last Resort"):
            continue  # maps every character to a placeholder box
        try:
            charmap = ft2font.FT2Font(entry.fname).get_charmap()
        except (OSError, RuntimeError, ValueError):
            continue
        if all(ord(char) in charmap for char in _CJK_PROBE):
            return str(entry.name)
    return None


def draw(translator: Translator, language: str, chart: Chart) -> bytes:
    """The chart as a PNG. Blocking: run it in a thread.

    Without a font for Chinese, a Chinese reader's chart is labelled in English and
    with the categories' ASCII keys, rather than drawn as empty boxes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.ticker import MaxNLocator

    font_name = cjk_font()
    drawable = font_name is not None or not language.startswith("zh")
    language = language if drawable else "en"

    def words(value: object) -> str:
        return translator.text(language, value, lambda payload: payload)

    labels = [
        label if label.isascii() or font_name is not None else key
        for label, key in zip((words(c) for c in chart.categories), chart.category_keys, strict=True)
    ]
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    font = FontProperties(family=[font_name, "DejaVu Sans"] if font_name else ["DejaVu Sans"])
    positions = list(range(len(labels)))
    bottoms = [0] * len(positions)
    for series in chart.series:
        axes.bar(
            positions,
            series.values,
            bottom=bottoms,
            color=series.colour,
            label=words(series.label),
            width=0.6,
        )
        bottoms = [b + v for b, v in zip(bottoms, series.values, strict=True)]
    axes.set_xticks(positions, labels, fontproperties=font)
    axes.set_xlim(-0.75, max(len(positions), 1) - 0.25)
    axes.set_ylim(0, max([1, *bottoms]) * 1.1)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(words(chart.y_label), fontproperties=font)
    axes.set_title(words(chart.title), fontproperties=font)
    axes.spines[["top", "right"]].set_visible(False)
    if chart.series:
        # Beside the bars, so it never hides one.
        axes.legend(prop=font, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


async def chart_photos(translator: Translator, language: str, reply: Reply) -> list[bytes]:
    """The reply's chart drawn as a photo (none if it has no chart), off the event loop."""
    if reply.chart is None:
        return []
    return [await asyncio.to_thread(draw, translator, language, reply.chart)]
