"""Police broadcasts end to end: the /alert dialogue, who receives what, schedules, the delivery
report, acknowledgements and their reminder, and residents' /settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.channels.base import Undeliverable
from handlers.accounts import rules as accounts
from handlers.broadcasts import rules as service
from handlers.broadcasts.rules import parse_when
from handlers.community import Community, PoliceGroups
from handlers.messages import Incoming, Lines
from storage.models import Broadcast, BroadcastCandidate, BroadcastFigures
from storage.repositories import Repos
from tests import harness as harness_module
from tests.harness import POLICE_GROUP, Harness, jpeg_with_gps

RESIDENTS_GROUP = "residents-group"
# Everyone's private chat id is their name (see Harness.person).
PEOPLE = ("wang", "chen", "li", "worker", "police2")
GROUPS = (RESIDENTS_GROUP, "g1-group", "g2-group")
LOCAL_23_30 = datetime(2026, 5, 18, 15, 30, tzinfo=UTC)


def community_with_groups() -> Community:
    base = harness_module.test_community()
    grids = [g.model_copy(update={"groups": PoliceGroups(console=[f"{g.key}-group"])}) for g in base.grids]
    return base.model_copy(
        update={"grids": grids, "resident_groups": PoliceGroups(console=[RESIDENTS_GROUP])}
    )


@pytest.fixture
async def h(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start(community_with_groups())
    await harness.person("police", accounts.POLICE, building=None)
    await harness.person("police2", accounts.POLICE, building=None)
    await harness.person("worker", accounts.GRID_WORKER, grids=("g1",), building=None)
    await harness.person("wang", building="3")  # grid g1
    await harness.person("chen", building="8")  # grid g2
    await harness.person("li", accounts.VOLUNTEER, building="4")  # grid g1
    await harness.person("newcomer", building="5", onboarded=False)
    yield harness
    await harness.close()


def received(h: Harness, chat: str) -> list[str]:
    return [s.text for s in h.channel.to(chat)]


def reached(h: Harness, key: str) -> set[str]:
    """The chats that were sent a message starting with `key`."""
    return {s.chat_id for s in h.channel.sent if s.text.startswith(key)}


async def compose(
    h: Harness,
    *,
    kind: str = "fraud",
    text: str = "近期有冒充公检法的诈骗电话，请勿向陌生账户转账。",
    audience: str = "community",
    grids: tuple[str, ...] = (),
    priority: str = "important",
    when: str | None = None,
) -> list[str]:
    """Go through /alert up to the preview; returns what the preview said."""
    assert await h.say("police", "/alert") == ["broadcast.ask_kind"]
    assert await h.press("police", f"v1:bca:kind:{kind}") == ["broadcast.ask_text"]
    assert await h.say("police", text) == ["broadcast.ask_audience"]
    if grids:
        assert await h.press("police", "v1:bca:aud:grids") == ["broadcast.ask_grids"]
        for grid in grids:
            assert await h.press("police", f"v1:bca:grid:{grid}") == ["broadcast.ask_grids"]
        assert await h.press("police", "v1:bca:grid:-done") == ["broadcast.ask_priority"]
    else:
        assert await h.press("police", f"v1:bca:aud:{audience}") == ["broadcast.ask_priority"]
    assert await h.press("police", f"v1:bca:prio:{priority}") == ["broadcast.ask_when"]
    if when is None:
        return await h.press("police", "v1:bca:when:now")
    return await h.say("police", when)


def preview_params(h: Harness) -> dict[str, Any]:
    assert h.last is not None
    summary = h.last.replies[-1].text
    assert isinstance(summary, Lines)
    return summary.items[0].params


async def publish(h: Harness, author: str = "police", **fields: Any) -> int:
    author_id = await h.user_id(author)

    async def run(repos: Repos) -> int:
        user = await repos.users.get(author_id)
        assert user is not None
        values = {"kind": "police", "priority": "important", "text": "今晚有大风，请收好阳台物品。"}
        values.update(fields)
        values.setdefault("audience", {"type": "community"})
        return await service.publish(repos, h.rt.community, user, now=h.clock.now(), **values)

    broadcast_id = int(await h.repos_do(run))
    h.rt.engine.on_outbox()
    await h.deliver()
    return broadcast_id


async def latest(h: Harness) -> Broadcast:
    found = await h.repos_do(lambda r: r.broadcasts.recent(None, h.clock.now() - timedelta(days=30)))
    return found[0]


async def figures(h: Harness, broadcast_id: int) -> BroadcastFigures:
    return await h.repos_do(lambda r: r.broadcasts.figures(broadcast_id))


# --- composing ------------------------------------------------------------------------------


async def test_alert_is_previewed_and_sent_only_on_confirm(h: Harness) -> None:
    assert await compose(h) == ["broadcast.message_important", "broadcast.preview"]
    params = preview_params(h)
    # Five people (not the author, not the one who never finished onboarding) and three groups.
    assert (params["people"], params["groups"]) == (5, 3)
    assert all(not h.channel.to(chat) for chat in (*PEOPLE, *GROUPS))

    assert await h.press("police", "v1:bca:ok:1") == ["broadcast.sending"]
    assert reached(h, "broadcast.message_important") == {*PEOPLE, *GROUPS}
    assert not h.channel.to("newcomer") and not h.channel.to(POLICE_GROUP)
    # The author gets the delivery report, not a copy.
    assert [s.text.split("\n")[0] for s in h.channel.to("police")] == ["broadcast.report_title"]

    broadcast = await latest(h)
    assert (broadcast.kind, broadcast.priority, broadcast.state) == ("fraud", "important", "sending")
    assert await figures(h, broadcast.id) == BroadcastFigures(
        people=5, groups=3, delivered=8, pending=0, failed=0, blocked=0, people_delivered=5, acked=0
    )


async def test_double_confirm_sends_once(h: Harness) -> None:
    await compose(h)
    assert await h.press("police", "v1:bca:ok:1") == ["broadcast.sending"]
    assert await h.press("police", "v1:bca:ok:1") == ["error.stale_button"]
    assert len(received(h, "wang")) == 1
    found = await h.repos_do(lambda r: r.broadcasts.recent(None, h.clock.now() - timedelta(days=1)))
    assert len(found) == 1


async def test_photo_then_text_and_editing_from_the_preview(h: Harness) -> None:
    assert await h.say("police", "/alert") == ["broadcast.ask_kind"]
    await h.press("police", "v1:bca:kind:missing")
    assert await h.photo("police", jpeg_with_gps()) == ["broadcast.photo_kept"]
    assert await h.say("police", "寻找走失老人：男，78岁，身穿蓝色外套。") == ["broadcast.ask_audience"]
    await h.press("police", "v1:bca:aud:community")
    await h.press("police", "v1:bca:prio:info")
    assert await h.press("police", "v1:bca:when:now") == ["broadcast.message_info", "broadcast.preview"]

    assert await h.press("police", "v1:bca:edit:1") == ["broadcast.ask_edit"]
    assert await h.press("police", "v1:bca:field:priority") == ["broadcast.ask_priority"]
    assert await h.press("police", "v1:bca:prio:urgent") == ["broadcast.message_urgent", "broadcast.preview"]
    # The preview shows the 收到 button as residents will see it; pressing it here only explains it.
    assert h.actions()[0] == "v1:bca:sample:0"
    assert await h.press("police", "v1:bca:sample:0") == []
    assert h.notice() == "broadcast.sample_button"

    await h.press("police", "v1:bca:ok:1")
    copy = h.channel.to("wang")[0]
    assert copy.text == "broadcast.message_urgent" and copy.photos == 1
    broadcast = await latest(h)
    assert copy.buttons == [("broadcast.button_ack", f"v1:bc:ack:{broadcast.id}")]
    # Groups get no button (people acknowledge privately) but are asked to pin it.
    group_copy = h.channel.to(RESIDENTS_GROUP)[0]
    assert group_copy.buttons == [] and group_copy.photos == 1


async def test_bad_input_is_answered_and_nothing_is_lost(h: Harness) -> None:
    await h.say("police", "/alert")
    assert await h.say("police", "随便说点什么") == ["broadcast.use_buttons", "broadcast.ask_kind"]
    await h.press("police", "v1:bca:kind:weather")
    assert await h.say("police", "长" * (service.MAX_TEXT_CHARS + 1)) == [
        "broadcast.text_too_long",
        "broadcast.ask_text",
    ]
    await h.say("police", "明天有暴雨，请注意出行安全。")
    assert await h.press("police", "v1:bca:aud:grids") == ["broadcast.ask_grids"]
    assert await h.press("police", "v1:bca:grid:-done") == [
        "broadcast.no_grids_chosen",
        "broadcast.ask_grids",
    ]
    await h.press("police", "v1:bca:grid:g2")
    await h.press("police", "v1:bca:grid:-done")
    await h.press("police", "v1:bca:prio:info")
    # 09:00 local now: 08:00 today has passed; nonsense is explained with the formats.
    assert await h.say("police", "08:00") == ["broadcast.when_past", "broadcast.ask_when"]
    assert await h.say("police", "下周吧") == ["broadcast.when_unreadable", "broadcast.ask_when"]
    assert await h.say("police", "2027-12-01 08:00") == ["broadcast.when_too_far", "broadcast.ask_when"]
    assert await h.say("police", "20:00") == ["broadcast.message_info", "broadcast.preview"]
    police_id = await h.user_id("police")
    draft = await h.repos_do(lambda r: r.conversations.get(police_id, "console"))
    assert draft.data["audience"] == {"type": "grids", "grids": ["g2"]}
    assert draft.data["text"] == "明天有暴雨，请注意出行安全。"


def test_typed_times_are_local() -> None:
    tz = harness_module.test_community().tz
    now = datetime(2026, 5, 18, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert parse_when("2026-11-28 19:00", now, tz) == datetime(2026, 11, 28, 11, 0, tzinfo=UTC)
    assert parse_when("11-28 19:00", now, tz) == datetime(2026, 11, 28, 11, 0, tzinfo=UTC)
    assert parse_when("２０：３０", now, tz) == datetime(2026, 5, 18, 12, 30, tzinfo=UTC)
    assert parse_when("2026/5/19  7:05", now, tz) == datetime(2026, 5, 18, 23, 5, tzinfo=UTC)
    assert parse_when("02-30 10:00", now, tz) is None
    assert parse_when("明天", now, tz) is None


async def test_residents_may_not_broadcast(h: Harness) -> None:
    assert await h.say("wang", "/alert") == ["error.not_allowed"]
    assert await h.say("worker", "/alerts") == ["error.not_allowed"]
    wang_id = await h.user_id("wang")
    assert await h.repos_do(lambda r: r.conversations.get(wang_id, "console")) is None
    wang = await h.repos_do(lambda r: r.users.get(wang_id))

    async def attempt(repos: Repos) -> None:
        await service.publish(
            repos,
            h.rt.community,
            wang,
            kind="police",
            priority="info",
            text="x",
            audience={},
            now=h.clock.now(),
        )

    with pytest.raises(service.PermissionDenied):
        await h.repos_do(attempt)


# --- who receives it ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audience", "chats"),
    [
        ({"type": "community"}, {*PEOPLE, *GROUPS}),
        ({"type": "grids", "grids": ["g2"]}, {"chen", "g2-group"}),
        ({"type": "grids", "grids": ["g1", "g2"]}, {"wang", "li", "chen", "g1-group", "g2-group"}),
        # Volunteers and the grid workers who organise them; no groups.
        ({"type": "volunteers"}, {"li", "worker"}),
        ({"type": "groups"}, set(GROUPS)),
    ],
)
async def test_audience_reaches_exactly_its_chats(
    h: Harness, audience: dict[str, Any], chats: set[str]
) -> None:
    police_id = await h.user_id("police")
    size = await h.repos_do(
        lambda r: service.audience_size(r, h.rt.community, audience, "police", "info", police_id)
    )
    broadcast_id = await publish(h, audience=audience)
    assert reached(h, "broadcast.message_important") == chats
    people = {c for c in chats if c in PEOPLE}
    assert size == (len(people), len(chats) - len(people))
    assert (await figures(h, broadcast_id)).delivered == len(chats)


async def test_grids_picked_in_the_dialogue(h: Harness) -> None:
    await compose(h, grids=("g1", "g2", "g2"))  # g2 pressed twice: chosen, then unchosen
    assert (preview_params(h)["people"], preview_params(h)["groups"]) == (2, 1)
    await h.press("police", "v1:bca:ok:1")
    assert reached(h, "broadcast.message_important") == {"wang", "li", "g1-group"}


async def test_blocked_people_are_skipped_until_they_write_again(h: Harness) -> None:
    await h.repos_do(lambda r: r.users.mark_blocked("console", "li", h.clock.now()))
    await publish(h, audience={"type": "volunteers"})
    assert reached(h, "broadcast.message_important") == {"worker"}
    await h.say("li", "你好")
    await publish(h, audience={"type": "volunteers"}, kind="community")
    assert received(h, "li")[-1] == "broadcast.message_important"


# --- settings: muted kinds and quiet hours ---------------------------------------------------


async def test_muted_kind_is_skipped_but_urgent_alerts_come(h: Harness) -> None:
    assert await h.say("wang", "/settings") == ["broadcast.settings"]
    assert "v1:bc:mute:fraud" in h.actions()
    assert await h.press("wang", "v1:bc:mute:fraud") == ["broadcast.settings"]
    assert h.notice() == "broadcast.muted_short"
    assert "v1:bc:unmute:fraud" in h.actions()

    await compose(h, kind="fraud", priority="important")
    assert "broadcast.preview_muted" in h.render(h.last.replies[-1].text)
    assert preview_params(h)["people"] == 4
    await h.press("police", "v1:bca:ok:1")
    assert received(h, "wang") == []
    assert received(h, "chen") == ["broadcast.message_important"]

    await publish(h, kind="fraud", priority="urgent")
    assert received(h, "wang") == ["broadcast.message_urgent"]
    # Other kinds still come.
    await publish(h, kind="weather", priority="info")
    assert received(h, "wang")[-1] == "broadcast.message_info"

    # Police see the opt-outs per kind in /alerts.
    await h.say("police", "/alerts")
    assert h.last is not None
    listing = h.last.replies[0].text
    assert isinstance(listing, Lines)
    counts = listing.items[-1].params["counts"].items
    assert {c.params["kind"].key: c.params["count"] for c in counts}["broadcast.kind_fraud"] == 1


async def test_quiet_hours_hold_information_until_morning_but_not_urgent_alerts(h: Harness) -> None:
    await h.press("chen", "v1:bc:quiet:2200-0700")
    assert h.notice() == "broadcast.quiet_saved"
    assert await h.press("wang", "v1:bc:quiet:ask") == ["broadcast.ask_quiet"]
    assert await h.say("wang", "半夜") == ["broadcast.quiet_unreadable", "broadcast.ask_quiet"]
    assert await h.say("wang", "22:30－06:30") == ["broadcast.settings"]
    wang_id = await h.user_id("wang")
    subscription = await h.repos_do(lambda r: r.broadcasts.subscription(wang_id))
    assert (subscription.quiet_from, subscription.quiet_until) == ("22:30", "06:30")

    h.clock.set(LOCAL_23_30)
    info_id = await publish(h, priority="info")
    assert reached(h, "broadcast.message_info") == {"li", "worker", "police2", *GROUPS}
    await publish(h, priority="urgent", kind="emergency")
    assert {"wang", "chen"} <= reached(h, "broadcast.message_urgent")
    assert (await figures(h, info_id)).pending == 2

    await h.wait(timedelta(hours=6, minutes=59))  # 06:29 local
    assert "broadcast.message_info" not in received(h, "wang")
    await h.wait(timedelta(minutes=1))  # 06:30 local
    assert "broadcast.message_info" in received(h, "wang")
    assert "broadcast.message_info" not in received(h, "chen")
    await h.wait(timedelta(minutes=30))  # 07:00 local
    assert "broadcast.message_info" in received(h, "chen")
    assert (await figures(h, info_id)).pending == 0


# --- scheduling and cancelling ---------------------------------------------------------------


async def test_scheduled_broadcast_goes_out_at_its_time_across_a_restart(h: Harness) -> None:
    assert await compose(h, when="20:00") == ["broadcast.message_important", "broadcast.preview"]
    assert await h.press("police", "v1:bca:ok:1") == ["broadcast.scheduled"]
    broadcast = await latest(h)
    assert broadcast.state == "scheduled"
    assert broadcast.scheduled_at == datetime(2026, 5, 18, 12, 0, tzinfo=UTC)
    assert not received(h, "wang") and not received(h, "police")

    await h.restart()
    await h.wait(timedelta(hours=10, minutes=59))
    assert not received(h, "wang")
    await h.wait(timedelta(minutes=1))
    assert reached(h, "broadcast.message_important") == {*PEOPLE, *GROUPS}
    assert received(h, "police")[0].startswith("broadcast.report_title")


async def test_scheduled_broadcast_cancelled_sends_nothing(h: Harness) -> None:
    await compose(h, when="2026-05-19 08:00")
    await h.press("police", "v1:bca:ok:1")
    broadcast = await latest(h)

    # Another officer sees it in /alerts and cancels it.
    await h.say("police2", "/alerts")
    assert f"v1:bc:stop:{broadcast.id}" in h.actions()
    assert await h.press("police2", f"v1:bc:stop:{broadcast.id}") == ["broadcast.cancelled_scheduled"]
    assert await h.press("police2", f"v1:bc:stop:{broadcast.id}") == ["broadcast.cannot_cancel"]

    await h.wait(timedelta(days=1))
    assert not any(s.text.startswith("broadcast.message") for s in h.channel.sent)
    assert (await latest(h)).state == "cancelled"


async def test_cancelling_while_sending_stops_the_copies_still_waiting(h: Harness) -> None:
    await h.press("chen", "v1:bc:quiet:2200-0700")
    h.clock.set(LOCAL_23_30)
    broadcast_id = await publish(h, priority="info")
    assert await h.press("police", f"v1:bc:stop:{broadcast_id}") == ["broadcast.cancelled_sending"]
    await h.wait(timedelta(hours=12))
    assert "broadcast.message_info" not in received(h, "chen")
    counted = await figures(h, broadcast_id)
    assert (counted.pending, counted.failed, counted.delivered) == (0, 1, 7)
    report = h.channel.to("police")[0]
    assert report.edits[-1].endswith("broadcast.report_cancelled")


# --- the delivery report ---------------------------------------------------------------------


async def test_report_is_edited_once_per_tick_and_finalised(h: Harness) -> None:
    broadcast_id = await publish(h)
    report = h.channel.to("police")[0]
    assert report.text.endswith("broadcast.report_sending")
    assert report.buttons == [
        ("broadcast.button_details", f"v1:bc:info:{broadcast_id}"),
        ("broadcast.button_cancel", f"v1:bc:stop:{broadcast_id}"),
    ]
    # Eight copies settled, yet one refresh is due, not eight.
    pending = await h.repos_do(lambda r: r.schedules.get(service.SCHEDULE_REPORT, str(broadcast_id)))
    assert pending.state == "pending"
    await h.wait(timedelta(seconds=15))
    assert len(report.edits) == 1 and report.edits[0].endswith("broadcast.report_finished")
    assert report.buttons == [("broadcast.button_details", f"v1:bc:info:{broadcast_id}")]
    finished = await latest(h)
    assert finished.state == "sent" and finished.finished_at == h.clock.now()
    assert len(received(h, "police")) == 1
    await h.wait(timedelta(minutes=5))
    assert len(report.edits) == 1


async def test_failed_copies_are_counted(h: Harness) -> None:
    h.channel.fail_with = Undeliverable("chat not found")
    broadcast_id = await publish(h, audience={"type": "grids", "grids": ["g2"]})
    h.channel.fail_with = None
    counted = await figures(h, broadcast_id)
    assert (counted.failed, counted.delivered) == (2, 0)


# --- acknowledgements ------------------------------------------------------------------------


async def test_acknowledgements_by_grid_and_building_and_one_reminder_across_restart(h: Harness) -> None:
    broadcast_id = await publish(h, priority="urgent", kind="emergency")
    assert await h.press("wang", f"v1:bc:ack:{broadcast_id}") == []
    assert h.notice() == "broadcast.ack_thanks"
    assert await h.press("wang", f"v1:bc:ack:{broadcast_id}") == []
    assert h.notice() == "broadcast.ack_again"
    await h.press("li", f"v1:bc:ack:{broadcast_id}")
    # Someone it was not sent to cannot acknowledge it.
    assert await h.press("newcomer", f"v1:bc:ack:{broadcast_id}") == ["broadcast.not_yours"]

    counted = await figures(h, broadcast_id)
    assert (counted.acked, counted.people_delivered) == (2, 5)
    by_grid = await h.repos_do(lambda r: r.broadcasts.acks_by(broadcast_id, "grid_key"))
    assert {(s.key, s.acked, s.delivered) for s in by_grid} == {("g1", 2, 2), ("g2", 0, 1), (None, 0, 2)}
    by_building = await h.repos_do(lambda r: r.broadcasts.acks_by(broadcast_id, "building"))
    assert {(s.key, s.acked, s.delivered) for s in by_building} == {
        ("3", 1, 1),
        ("4", 1, 1),
        ("8", 0, 1),
        (None, 0, 2),
    }
    assert await h.press("police", f"v1:bc:info:{broadcast_id}") == [
        "\n".join(
            [
                "broadcast.message_urgent",
                "broadcast.report_title",
                "broadcast.report_audience",
                "broadcast.report_figures",
                "broadcast.report_acks",
                *["broadcast.report_ack_grid"] * 3,
                *["broadcast.report_ack_building"] * 4,
                "broadcast.report_sending",
            ]
        )
    ]

    await h.restart()
    await h.wait(timedelta(minutes=h.rt.community.broadcasts.ack_reminder_minutes))
    reminder = "broadcast.reminder\nbroadcast.message_urgent"
    assert {s.chat_id for s in h.channel.sent if s.text == reminder} == {"chen", "worker", "police2"}
    assert h.channel.to("chen")[-1].buttons == [("broadcast.button_ack", f"v1:bc:ack:{broadcast_id}")]
    await h.restart()
    await h.wait(timedelta(hours=3))
    assert sum(1 for s in h.channel.sent if s.text == reminder) == 3
    await h.press("chen", f"v1:bc:ack:{broadcast_id}")
    assert h.notice() == "broadcast.ack_thanks"
    assert (await figures(h, broadcast_id)).acked == 3


async def test_acknowledging_before_the_reminder_goes_out_cancels_it(h: Harness) -> None:
    h.clock.set(LOCAL_23_30)
    broadcast_id = await publish(h, priority="urgent", audience={"type": "grids", "grids": ["g2"]})

    chen_id = await h.user_id("chen")

    async def ack(repos: Repos) -> None:
        chen = await repos.users.get(chen_id)
        assert chen is not None
        await service.acknowledge(repos, chen, broadcast_id, h.clock.now())

    # The reminder is queued at its time but chen acknowledges before delivery.
    h.clock.advance(timedelta(minutes=h.rt.community.broadcasts.ack_reminder_minutes))
    await h.rt.engine.fire_due()
    await h.repos_do(ack)
    await h.deliver()
    assert not any(s.text.startswith("broadcast.reminder") for s in h.channel.to("chen"))


async def test_two_simultaneous_confirms_publish_once(h: Harness) -> None:
    await compose(h)
    confirm = Incoming(
        channel="console",
        user_external_id="police",
        chat_id="police",
        display_name="police",
        action="v1:bca:ok:1",
    )
    answers = await asyncio.gather(h.rt.engine.handle(confirm), h.rt.engine.handle(confirm))
    await h.deliver()
    keys = sorted(h.render(reply.text) for answer in answers for reply in answer.replies)
    assert keys.count("broadcast.sending") == 1
    found = await h.repos_do(lambda r: r.broadcasts.recent(None, h.clock.now() - timedelta(days=1)))
    assert len(found) == 1
    assert received(h, "wang") == ["broadcast.message_important"]


@pytest.mark.parametrize(
    ("quiet", "local_now", "until"),
    [
        (("22:00", "07:00"), "23:30", "2026-05-19 07:00"),
        (("22:00", "07:00"), "06:59", "2026-05-18 07:00"),
        (("22:00", "07:00"), "07:00", None),
        (("22:00", "07:00"), "21:59", None),
        (("12:00", "14:00"), "13:00", "2026-05-18 14:00"),
        (("12:00", "14:00"), "23:00", None),
    ],
)
def test_quiet_hours_end_at_the_next_local_end(
    quiet: tuple[str, str], local_now: str, until: str | None
) -> None:
    tz = harness_module.test_community().tz
    candidate = BroadcastCandidate(1, "resident", None, None, None, "console", "x", [], *quiet)
    now = datetime.fromisoformat(f"2026-05-18 {local_now}").replace(tzinfo=tz).astimezone(UTC)
    expected = datetime.fromisoformat(until).replace(tzinfo=tz).astimezone(UTC) if until else None
    assert service.quiet_until(candidate, tz, now) == expected


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [
        ("22:30-06:30", ("22:30", "06:30")),
        ("２２：００～７：００", ("22:00", "07:00")),
        ("23:00 至 06:00", ("23:00", "06:00")),
        ("22:00-22:00", None),
        ("25:00-06:00", None),
        ("晚上十点", None),
    ],
)
def test_typed_quiet_hours(typed: str, parsed: tuple[str, str] | None) -> None:
    assert service.parse_quiet_hours(typed) == parsed
