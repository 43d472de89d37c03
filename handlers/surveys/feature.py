"""What satisfaction surveys plug into the engine."""

from __future__ import annotations

from handlers.accounts import rules as accounts
from handlers.registry import KEEP, Feature, PersonalData
from handlers.surveys import buttons, design, results, views

FEATURE = Feature(
    name="surveys",
    commands={"survey": design.start, "surveys": results.list_surveys},
    actions={views.ACTION: buttons.on_action},
    flows=(design.FLOW,),
    help={role: ("survey", "surveys") for role in accounts.COMMANDERS},
    # survey_points; the grids name the audiences.
    community_section="broadcasts",
    personal_data=(
        PersonalData("surveys", "author_id", "surveys this person started", KEEP),
        PersonalData(
            "survey_participants", "user_id", "surveys this person was invited to, grid, progress", KEEP
        ),
        PersonalData("survey_answers", "user_id", "this person's answers to survey questions", KEEP),
    ),
)
