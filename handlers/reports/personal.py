"""What /mydata shows of a person's reports, and what erasing the reporter does to them."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from handlers.registry import Erasure
from storage.personal import PersonalDataRepo
from storage.repositories import Repos


async def export_filed(repos: Repos, user_id: int) -> list[dict[str, Any]]:
    """Each report this person filed, with every change of state and the photos it holds."""
    personal = repos.of(PersonalDataRepo)
    reports = await personal.rows("reports", "reporter_id", user_id)
    for report in reports:
        report["events"] = [asdict(event) for event in await repos.reports.events(report["id"])]
        report["photos"] = await personal.report_photos(report["id"])
    return reports


async def erase_filed(erasure: Erasure) -> None:
    """The reports stay on record, anonymous. The reporter's own photos go once a report is closed;
    those of an open report stay, because police still act on them (the retention in the
    community file removes them later)."""
    personal = erasure.repos.of(PersonalDataRepo)
    await personal.mark_reports_anonymous(erasure.user_id)
    closed = await personal.closed_reports_of(erasure.user_id)
    erasure.repos.forgotten_media.extend(await personal.remove_report_photos(closed, ("before",)))
