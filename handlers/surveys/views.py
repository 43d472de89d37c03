"""What police and residents see of surveys: the dialogue's buttons, questions, answers, results."""

from __future__ import annotations

from typing import Any

from handlers import choices
from handlers.community import Community
from handlers.messages import Choice, Lines, Reply, Text, Verbatim
from handlers.surveys import rules
from storage.models import Survey
from storage.notices import CLOSED, OPEN, Turnout

Rows = tuple[tuple[Choice, ...], ...]

# Answers and Close: they work outside the dialogue too.
ACTION = "svy"
# Buttons of the /survey dialogue.
FLOW_ACTION = "svf"


def flow_button(key: str, verb: str, arg: str | int, **params: object) -> Choice:
    return Choice(Text(key, dict(params)), action=choices.encode(FLOW_ACTION, verb, arg))


def _pairs(buttons: list[Choice]) -> Rows:
    # Two a row: choices are words, and a phone shows two side by side comfortably.
    return tuple(tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2))


# --- labels ----------------------------------------------------------------------------------


def grid_label(community: Community, grid_key: str | None) -> Text | Verbatim:
    grid = community.grid(grid_key) if grid_key else None
    if grid is not None:
        return Verbatim(grid.name)
    return Verbatim(grid_key) if grid_key else Text("survey.no_grid")


def audience_label(community: Community, audience: dict[str, Any], sample_size: int | None) -> Text:
    grid_key = rules.audience_grid(audience)
    whom = (
        Text("survey.audience_everyone")
        if grid_key is None
        else Text("survey.audience_grid", {"grid": grid_label(community, grid_key)})
    )
    if sample_size is None:
        return whom
    return Text("survey.audience_sample", {"audience": whom, "count": sample_size})


def question_label(question: dict[str, Any], number: int) -> Text:
    """A question as police see it in a preview: number, text and how it is answered."""
    kind: Text
    if question["type"] == rules.SCALE:
        kind = Text("survey.type_scale")
    else:
        kind = Text("survey.type_choice", {"choices": Verbatim(" / ".join(question["choices"]))})
    return Text(
        "survey.preview_question", {"number": number, "question": Verbatim(question["text"]), "type": kind}
    )


# --- the /survey dialogue ------------------------------------------------------------------------


def type_buttons() -> Rows:
    return (
        (
            flow_button("survey.button_scale", "type", rules.SCALE),
            flow_button("survey.button_choices", "type", rules.CHOICE),
        ),
    )


def more_buttons() -> Rows:
    return (
        (flow_button("survey.button_add", "more", "add"), flow_button("survey.button_done", "more", "done")),
    )


def audience_buttons(community: Community) -> Rows:
    buttons = [flow_button("survey.button_everyone", "aud", "all")]
    buttons.extend(
        flow_button("survey.button_grid", "aud", grid.key, grid=Verbatim(grid.name))
        for grid in community.grids
    )
    return _pairs(buttons)


def sample_buttons() -> Rows:
    return ((flow_button("survey.button_all", "sample", "all"),),)


def confirm(community: Community, data: dict[str, Any], eligible: int, points: int) -> Reply:
    """The survey as it will go out: title, questions, who is asked, the points for finishing."""
    sample = data.get("sample")
    questions = Lines(tuple(question_label(q, n) for n, q in enumerate(data["questions"], start=1)))
    row = (
        flow_button("survey.button_confirm", "ok", 1),
        flow_button("survey.button_cancel", "no", 1),
    )
    text = Text(
        "survey.confirm",
        {
            "title": Verbatim(data["title"]),
            "questions": questions,
            "audience": audience_label(community, data["audience"], sample),
            "invited": eligible if sample is None else min(sample, eligible),
            "points": points,
        },
    )
    return Reply(text, (row,))


def title(survey: Survey) -> Verbatim:
    return Verbatim(survey.title)


# --- asking residents ---------------------------------------------------------------------------


def question_text(survey: Survey, index: int) -> Text:
    question = survey.questions[index]
    return Text(
        "survey.question_scale" if question["type"] == rules.SCALE else "survey.question_choice",
        {"number": index + 1, "total": len(survey.questions), "question": Verbatim(question["text"])},
    )


def answer_buttons(survey: Survey, index: int) -> Rows:
    question = survey.questions[index]

    def button(label: Text, value: int) -> Choice:
        return Choice(label, action=choices.encode(ACTION, "a", survey.id, index, value))

    if question["type"] == rules.SCALE:
        return (tuple(button(Text("survey.scale_button", {"value": v}), v) for v in rules.SCALE_VALUES),)
    buttons = [
        button(Text("survey.choice_button", {"choice": Verbatim(label)}), position)
        for position, label in enumerate(question["choices"])
    ]
    return _pairs(buttons)


def question(survey: Survey, index: int) -> Reply:
    return Reply(question_text(survey, index), answer_buttons(survey, index))


def invitation(survey: Survey) -> Reply:
    intro = Text(
        "survey.invite" if survey.points else "survey.invite_no_points",
        {"title": Verbatim(survey.title), "total": len(survey.questions), "points": survey.points},
    )
    return Reply(Lines((intro, question_text(survey, 0))), answer_buttons(survey, 0))


# --- results -------------------------------------------------------------------------------


def _rate(finished: int, invited: int) -> str:
    return f"{finished * 100 / invited:.0f}%" if invited else "0%"


def _question_result(survey: Survey, index: int, counts: dict[str, int]) -> Text | Lines:
    question = survey.questions[index]
    shown = {"number": index + 1, "question": Verbatim(question["text"])}
    answered = sum(counts.values())
    if not answered:
        return Text("survey.result_unanswered", shown)
    if question["type"] == rules.SCALE:
        average = sum(int(value) * n for value, n in counts.items()) / answered
        return Text("survey.result_scale", {**shown, "average": f"{average:.1f}", "count": answered})
    lines = [Text("survey.result_choice", shown)]
    lines.extend(
        Text("survey.result_choice_line", {"choice": Verbatim(label), "count": counts.get(str(position), 0)})
        for position, label in enumerate(question["choices"])
    )
    return Lines(tuple(lines))


def _section(community: Community, found: rules.Results, turnout: Turnout) -> Text:
    survey = found.survey
    by_question = found.counts(turnout.grid_key)
    return Text(
        "survey.result_grid",
        {
            "grid": grid_label(community, turnout.grid_key),
            "rate": _rate(turnout.finished, turnout.invited),
            "finished": turnout.finished,
            "invited": turnout.invited,
            "questions": Lines(
                tuple(
                    Text(
                        "survey.result_item", {"result": _question_result(survey, i, by_question.get(i, {}))}
                    )
                    for i in range(len(survey.questions))
                )
            ),
        },
    )


def results_text(community: Community, found: rules.Results) -> Text:
    """The survey's results per grid with each grid's response rate."""
    survey = found.survey
    return Text(
        "survey.results",
        {
            "title": Verbatim(survey.title),
            "state": Text("survey.state_open" if survey.state == OPEN else "survey.state_closed"),
            "audience": audience_label(community, survey.audience, survey.sample_size),
            "rate": _rate(found.finished, found.invited),
            "finished": found.finished,
            "invited": found.invited,
            "grids": Lines(tuple(_section(community, found, t) for t in found.turnout)),
        },
    )


def close_button(survey: Survey) -> Rows:
    if survey.state == CLOSED:
        return ()
    return ((Choice(Text("survey.button_close"), action=choices.encode(ACTION, "close", survey.id)),),)


def results(community: Community, found: rules.Results) -> Reply:
    return Reply(results_text(community, found), close_button(found.survey))
