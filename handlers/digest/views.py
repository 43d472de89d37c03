"""The digest as a message: the figures in words, and the chart drawn when it is sent."""

from __future__ import annotations

from handlers.community import Community
from handlers.digest.rules import Figures
from handlers.messages import BarSeries, Chart, Lines, Reply, Text, Verbatim, When
from storage import report_states as rs

# Report states bottom to top in each bar, and their colours: waiting warm, done green, dropped grey.
CHART_STATES: tuple[tuple[str, str], ...] = (
    (rs.SUBMITTED, "#d62728"),
    (rs.ACKNOWLEDGED, "#ff7f0e"),
    (rs.ASSIGNED, "#f2c14e"),
    (rs.IN_PROGRESS, "#1f77b4"),
    (rs.RESOLVED, "#2ca02c"),
    (rs.REJECTED, "#7f7f7f"),
    (rs.DUPLICATE, "#c7c7c7"),
)


def _percent(rate: float) -> str:
    return f"{rate * 100:.0f}%"


def _one_decimal(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def grid_label(community: Community, grid_key: str | None) -> Text | Verbatim:
    grid = community.grid(grid_key) if grid_key else None
    if grid is not None:
        return Verbatim(grid.name)
    return Verbatim(grid_key) if grid_key else Text("digest.no_grid")


def digest_text(community: Community, figures: Figures) -> Text:
    grid_lines = Lines(
        tuple(
            Text(
                "digest.grid_line",
                {"grid": grid_label(community, g.grid_key), "opened": g.opened, "closed": g.closed},
            )
            for g in figures.grids
        )
    )
    rate = figures.closure_rate
    closure = (
        Text(
            "digest.closure_rate",
            {"rate": _percent(rate), "closed": figures.opened_and_closed, "opened": figures.opened},
        )
        if rate is not None
        else Text("digest.not_applicable")
    )
    median = (
        Text("digest.hours", {"hours": _one_decimal(figures.median_to_close.total_seconds() / 3600)})
        if figures.median_to_close is not None
        else Text("digest.not_applicable")
    )
    satisfaction = (
        Text("digest.rating", {"average": _one_decimal(figures.rating_average), "count": figures.ratings})
        if figures.rating_average is not None
        else Text("digest.no_ratings")
    )
    fill = figures.fill_rate
    patrols = (
        Text(
            "digest.patrols",
            {
                "hours": _one_decimal(figures.patrol_minutes / 60),
                "fill": _percent(fill),
                "confirmed": figures.patrol_confirmed,
                "places": figures.patrol_places,
            },
        )
        if fill is not None
        else Text("digest.no_patrols")
    )
    top = (
        Lines(
            tuple(
                Text("digest.top_line", {"rank": rank, "name": Verbatim(e.display_name), "points": e.points})
                for rank, e in enumerate(figures.top, start=1)
            )
        )
        if figures.top
        else Text("digest.nobody")
    )
    return Text(
        "digest.text",
        {
            "start": When(figures.start),
            "end": When(figures.end),
            "grids": grid_lines,
            "opened": figures.opened,
            "closed": figures.closed,
            "closure": closure,
            "median": median,
            "open_now": figures.open_now,
            "overdue_now": figures.overdue_now,
            "satisfaction": satisfaction,
            "patrols": patrols,
            "top": top,
        },
    )


def chart_of(community: Community, figures: Figures) -> Chart:
    """The week's reports per grid, stacked by their current state; drawn by the channel side."""
    categories: list[Text | Verbatim] = []
    keys: list[str] = []
    for g in figures.grids:
        grid = community.grid(g.grid_key) if g.grid_key else None
        categories.append(Verbatim(grid.name) if grid else Text("digest.no_grid"))
        keys.append(g.grid_key or "-")
    series = tuple(
        BarSeries(Text(f"state.{state}"), colour, tuple(g.states.get(state, 0) for g in figures.grids))
        for state, colour in CHART_STATES
        if any(g.states.get(state, 0) for g in figures.grids)
    )
    tz = community.tz
    first, last = figures.start.astimezone(tz), figures.end.astimezone(tz)
    # Dates as numbers read the same in every language.
    period = Verbatim(f"{first:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M}")
    return Chart(
        title=Lines((Text("digest.chart_title"), period)),
        y_label=Text("digest.chart_y_label"),
        categories=tuple(categories),
        category_keys=tuple(keys),
        series=series,
    )


def digest(community: Community, figures: Figures) -> Reply:
    """The digest with its chart (drawn when it is sent)."""
    return Reply(digest_text(community, figures), chart=chart_of(community, figures))
