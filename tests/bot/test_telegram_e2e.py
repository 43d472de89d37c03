"""The Telegram adapter over the wire: the real PTB Application against a fake Bot API server.

Everything below the HTTP boundary is real: PTB's request encoding and de-json,
the adapter, the engine, the outbox worker, SQLite and the translation
catalogues. Assertions stick to facts translators will not change: ticket
numbers, callback data, which chat got what, edits of the card, state words.
"""

from __future__ import annotations

from datetime import timedelta

from PIL import Image

from bot.channels.telegram import _fit, _split
from handlers import notify
from handlers.messages import Document, Reply, Text
from tests.bot.telegram_live import (
    BEIJING,
    GROUP,
    INSIDE,
    NEIGHBOUR,
    POLICE,
    REPORTER,
    STRANGER,
    TICKET,
    WORKER,
    Live,
    content,
)
from tests.fakes.telegram_api import FakeBotApi
from tests.harness import jpeg_with_gps


async def test_whole_lifecycle_from_start_to_rating(live: Live, api: FakeBotApi) -> None:
    # Onboarding: language button, privacy accept, building as text.
    done = await live.onboard(REPORTER, "3")
    assert "幸福里社区" in content(done[-1]) and "第一网格" in content(done[-1])
    assert done[-1].reply_markup is not None and "keyboard" in done[-1].reply_markup  # the main menu
    staff = await live.onboard(WORKER, None)
    assert "网格员" in content(staff[-1])
    await live.onboard(POLICE, None)

    # The persistent menu label starts a report like /report does.
    started = await live.say(REPORTER, "📝 上报隐患")
    assert "v1:rpt:cat:fire" in started[-1].callback_data
    _, urgency = await live.press(REPORTER, "v1:rpt:cat:fire")
    assert urgency[-1].callback_data == ["v1:rpt:urg:normal", "v1:rpt:urg:urgent"]
    await live.press(REPORTER, "v1:rpt:urg:urgent")
    asked = await live.say(REPORTER, "3号楼消防通道被电动车堵住了")
    assert asked[-1].callback_data == ["v1:rpt:ph:done"]

    # The photo is fetched through getFile and stored re-encoded, without EXIF.
    got = await live.photo(REPORTER, jpeg_with_gps())
    assert "1" in content(got[-1]) and api.calls_of("getFile")
    media = await live.repos(lambda r: r.media.get(1))
    with Image.open(live.rt.media.path_of(media.path)) as stored:
        assert dict(stored.getexif()) == {} and "exif" not in stored.info

    _, where = await live.press(REPORTER, "v1:rpt:ph:done")
    assert "v1:rpt:loc:home" in where[0].callback_data
    # ...and the reply keyboard asks the phone for its location.
    assert where[-1].reply_markup is not None
    assert where[-1].reply_markup["keyboard"][0][0]["request_location"] is True
    noted = await live.location(REPORTER, INSIDE)
    # Where it was noted, in the same message as the next question.
    assert "31.22920" in content(noted[0]) and "v1:rpt:anon:no" in noted[0].callback_data
    _, summary = await live.press(REPORTER, "v1:rpt:anon:no")
    assert summary[-1].method == "sendPhoto" and "消防隐患" in content(summary[-1])
    _, submitted = await live.press(REPORTER, "v1:rpt:ok:1")
    assert TICKET in content(submitted[-1])
    report = await live.report(TICKET)
    assert (report.state, report.grid_key, report.urgency) == ("submitted", "g1", "urgent")

    # The grid worker is told privately; the police group gets the card with the photo and actions.
    assert TICKET in content(api.sent_messages(WORKER)[-1])
    card = api.sent_messages(GROUP)[-1]
    assert card.method == "sendPhoto" and card.photo
    assert TICKET in content(card) and "已上报" in content(card)
    assert card.callback_data == [f"v1:rep:{verb}:{report.id}" for verb in ("ack", "asg", "rej", "dup")]

    # Police acknowledge on the group card: the card is edited in place, the query answered.
    answer, _ = await live.press(POLICE, f"v1:rep:ack:{report.id}", card)
    assert answer is not None and TICKET in answer
    assert [edit["method"] for edit in card.edits] == ["editMessageCaption"]
    assert "已受理" in content(card) and f"v1:rep:ack:{report.id}" not in card.callback_data
    assert TICKET in content(api.sent_messages(REPORTER)[-1])
    assert "已受理" in content(api.sent_messages(REPORTER)[-1])

    # Assigning from the group continues in the officer's private chat.
    answer, _ = await live.press(POLICE, f"v1:rep:asg:{report.id}", card)
    assert answer is not None and "私聊" in answer
    pick = api.sent_messages(POLICE)[-1]
    worker_user = await live.repos(lambda r: r.users.by_identity("telegram", str(WORKER)))
    assert pick.callback_data == [f"v1:rep:to:{report.id}:{worker_user[0].id}"]
    await live.press(POLICE, pick.callback_data[0], pick)
    task = api.sent_messages(WORKER)[-1]
    assert task.method == "sendPhoto" and TICKET in content(task)
    assert task.callback_data == [f"v1:rep:start:{report.id}", f"v1:rep:res:{report.id}"]
    assert "已派单" in content(card) and "李网格员" in content(card)

    # The worker starts, resolves with a note and an after photo.
    await live.press(WORKER, f"v1:rep:start:{report.id}", task)
    await live.press(WORKER, f"v1:rep:res:{report.id}", task)
    await live.say(WORKER, "已清理通道，电动车已移走")
    resolved = await live.photo(WORKER, jpeg_with_gps())
    assert TICKET in content(resolved[-1])
    assert "已办结" in content(card) and card.callback_data == []
    assert len(await live.repos(lambda r: r.reports.photos(report.id, "after"))) == 1

    # The reporter is asked for a rating, rates, and comments.
    told = api.sent_messages(REPORTER)[-1]
    assert "已清理通道" in content(told)
    assert told.callback_data == [f"v1:rate:{report.id}:{n}" for n in range(1, 6)]
    answer, asked = await live.press(REPORTER, f"v1:rate:{report.id}:5", told)
    assert answer and "v1:rate:skip" in asked[-1].callback_data
    await live.say(REPORTER, "处理很及时，谢谢！")
    done_report = await live.report(TICKET)
    assert (done_report.state, done_report.rating) == ("resolved", 5)
    assert done_report.rating_comment == "处理很及时，谢谢！"
    events = await live.repos(lambda r: r.reports.events(report.id))
    assert [e.to_state for e in events] == [
        "submitted",
        "acknowledged",
        "assigned",
        "in_progress",
        "resolved",
    ]
    # Nothing the bot sent was refused by the API (each press was answered: see Live.press).
    assert [c.error for c in api.calls if c.rejected] == []


async def test_bad_input_is_answered_and_loses_nothing(onboarded: Live, api: FakeBotApi) -> None:
    live = onboarded
    started = await live.say(REPORTER, "/report")
    category_message = started[-1]
    api.push_sticker(REPORTER)
    await live.settle()
    again = api.sent_messages(REPORTER)[-2:]
    assert "按钮" in content(again[0]) and again[-1].callback_data == category_message.callback_data

    await live.press(REPORTER, "v1:rpt:cat:road", category_message)
    await live.press(REPORTER, "v1:rpt:urg:normal")
    api.push_voice(REPORTER)
    await live.settle()
    assert "文字" in content(api.sent_messages(REPORTER)[-2])
    too_long = await live.say(REPORTER, "长" * 5000)
    assert "5000" in content(too_long[0]) and "1000" in content(too_long[0])
    await live.say(REPORTER, "路灯坏了，晚上很黑")
    api.push_voice(REPORTER)
    await live.settle()
    assert "照片" in content(api.sent_messages(REPORTER)[-2])
    await live.press(REPORTER, "v1:rpt:ph:done")
    outside = await live.location(REPORTER, BEIJING)
    assert "幸福里社区" in content(outside[0])
    unknown = await live.say(REPORTER, "/frobnicate")
    assert "/frobnicate" in content(unknown[-1])

    # A button from a message the dialogue has left behind is refused politely.
    _, stale = await live.press(REPORTER, "v1:rpt:cat:fire", category_message)
    assert "失效" in content(stale[0]) and "位置" in content(stale[-1])

    # Nothing typed so far was lost.
    user = await live.repos(lambda r: r.users.by_identity("telegram", str(REPORTER)))
    draft = await live.repos(lambda r: r.conversations.get(user[0].id, "telegram"))
    assert (draft.step, draft.data["category"], draft.data["description"]) == (
        "location",
        "road",
        "路灯坏了，晚上很黑",
    )
    assert [c.error for c in api.calls if c.rejected] == []


async def test_group_buttons_are_guarded_and_double_clicks_harmless(onboarded: Live, api: FakeBotApi) -> None:
    live = onboarded
    ticket = await live.file_report(REPORTER)
    report = await live.report(ticket)
    card = api.sent_messages(GROUP)[-1]
    ack = f"v1:rep:ack:{report.id}"

    # A resident in the group presses a police button: refused with a toast, nothing changes.
    answer, said = await live.press(NEIGHBOUR, ack, card)
    assert answer is not None and "身份" in answer and said == []
    assert card.edits == [] and (await live.report(ticket)).state == "submitted"
    assert api.sent_messages(NEIGHBOUR) == []

    await live.press(POLICE, ack, card)
    assert [edit["method"] for edit in card.edits] == ["editMessageText"]  # a card without a photo
    # A second click on the same (old) button: explained, the card and the report stay as they are.
    answer, said = await live.press(POLICE, ack, card)
    assert answer is not None and ticket in answer and "已受理" in answer
    assert said == [] and len(card.edits) == 1
    events = await live.repos(lambda r: r.reports.events(report.id))
    assert [e.to_state for e in events] == ["submitted", "acknowledged"]


async def test_group_commands(live: Live, api: FakeBotApi) -> None:
    said = await live.say(NEIGHBOUR, "/report@shouwang_test_bot", chat_id=GROUP)
    assert len(said) == 1
    assert said[0].buttons[0]["url"] == "https://t.me/shouwang_test_bot?start=report"
    assert api.sent_messages(NEIGHBOUR) == []
    user = await live.repos(lambda r: r.users.by_identity("telegram", str(NEIGHBOUR)))
    assert await live.repos(lambda r: r.conversations.get(user[0].id, "telegram")) is None

    # A command for another bot never reaches the engine; group chatter gets no answer.
    assert await live.say(STRANGER, "/report@otherbot", chat_id=GROUP) == []
    assert await live.repos(lambda r: r.users.by_identity("telegram", str(STRANGER))) is None
    assert await live.say(STRANGER, "大家好", chat_id=GROUP) == []

    # The deep link lands in the onboarding, which then goes straight on to the report.
    asked = await live.say(NEIGHBOUR, "/start report")
    await live.press(NEIGHBOUR, "v1:lang:zh_CN", asked[-1])
    await live.press(NEIGHBOUR, "v1:onb:accept")
    done = await live.say(NEIGHBOUR, "8")
    assert "v1:rpt:cat:fire" in done[-1].callback_data


async def test_restart_mid_report_resumes_the_draft(onboarded: Live, api: FakeBotApi) -> None:
    live = onboarded
    await live.say(REPORTER, "/report")
    await live.press(REPORTER, "v1:rpt:cat:dispute")
    await live.press(REPORTER, "v1:rpt:urg:normal")
    old_application = live.channel.application
    await live.restart()
    assert live.channel.application is not old_application
    photos = await live.say(REPORTER, "楼上邻居深夜噪音，多次沟通无果")
    assert photos[-1].callback_data == ["v1:rpt:ph:done"]
    await live.restart()
    resumed = await live.say(REPORTER, "/report")
    assert resumed[-1].callback_data == ["v1:rpt:ph:done"]
    await live.press(REPORTER, "v1:rpt:ph:done")
    await live.press(REPORTER, "v1:rpt:loc:home")
    await live.press(REPORTER, "v1:rpt:anon:no")
    _, done = await live.press(REPORTER, "v1:rpt:ok:1")
    assert TICKET in content(done[-1])
    report = await live.report(TICKET)
    assert (report.category, report.description) == ("dispute", "楼上邻居深夜噪音，多次沟通无果")


async def test_blocked_user_is_not_retried(onboarded: Live, api: FakeBotApi) -> None:
    live = onboarded
    ticket = await live.file_report(REPORTER)
    report = await live.report(ticket)
    api.blocked_users.add(REPORTER)
    await live.press(POLICE, f"v1:rep:ack:{report.id}", api.sent_messages(GROUP)[-1])
    rows = await live.outbox_to(REPORTER)
    assert (rows[-1].state, rows[-1].attempts) == ("blocked", 1)
    live.clock.advance(timedelta(hours=2))
    live.rt.delivery.wake()
    await live.settle()
    refused = [c for c in api.calls_of("sendMessage") if c.params["chat_id"] == REPORTER and c.rejected]
    assert len(refused) == 1 and refused[0].status == 403
    assert (await live.outbox_to(REPORTER))[-1].state == "blocked"


async def test_rate_limited_send_is_retried_later_and_delivered_once(
    onboarded: Live, api: FakeBotApi
) -> None:
    live = onboarded
    api.configure_rate_limits(per_group_per_minute=1)
    # The group's one message this minute.
    assert len(await live.say(NEIGHBOUR, "/help@shouwang_test_bot", chat_id=GROUP)) == 1
    ticket = await live.file_report(REPORTER)
    to_group = [c for c in api.calls if c.params.get("chat_id") == GROUP]
    assert [(c.method, c.status) for c in to_group] == [("sendMessage", 200), ("sendMessage", 429)]
    card_row = (await live.outbox_to(GROUP))[-1]
    assert card_row.state == "pending" and card_row.attempts == 1
    assert card_row.next_attempt_at > live.clock.now()

    api.configure_rate_limits()  # the minute is over
    live.clock.advance(timedelta(seconds=61))
    live.rt.delivery.wake()
    await live.settle()
    cards = [m for m in api.sent_messages(GROUP) if ticket in content(m)]
    assert len(cards) == 1 and cards[0].callback_data[0] == "v1:rep:ack:1"
    assert (await live.outbox_to(GROUP))[-1].state == "sent"
    live.rt.delivery.wake()
    await live.settle()
    assert len([m for m in api.sent_messages(GROUP) if ticket in content(m)]) == 1


async def test_direct_replies_held_up_by_flood_limits_go_through_the_outbox(
    onboarded: Live, api: FakeBotApi
) -> None:
    live = onboarded
    await live.say(REPORTER, "/report")
    # One message every two seconds into a chat: of the two replies to a stray text ("use the
    # buttons", then the question again) the second hits a 429.
    api.configure_rate_limits(per_chat_per_second=0.5)
    said = await live.say(REPORTER, "🙂")
    assert len(said) == 1 and not said[0].callback_data
    deferred = (await live.outbox_to(REPORTER))[-1]
    assert deferred.state == "pending" and deferred.kind == "message"

    api.configure_rate_limits()
    live.clock.advance(timedelta(minutes=1))
    live.rt.delivery.wake()
    await live.settle()
    assert "v1:rpt:cat:fire" in api.sent_messages(REPORTER)[-1].callback_data
    categories = [m for m in api.sent_messages(REPORTER) if "v1:rpt:cat:fire" in m.callback_data]
    assert len(categories) == 2  # the first question, and the one repeated after the sticker
    # ...and the dialogue goes on from the delivered question.
    _, urgency = await live.press(REPORTER, "v1:rpt:cat:fire", categories[-1])
    assert urgency[-1].callback_data == ["v1:rpt:urg:normal", "v1:rpt:urg:urgent"]


async def test_text_that_only_looks_like_a_command_is_text(onboarded: Live, api: FakeBotApi) -> None:
    live = onboarded
    await live.say(REPORTER, "/report")
    await live.press(REPORTER, "v1:rpt:cat:road")
    await live.press(REPORTER, "v1:rpt:urg:normal")
    # Telegram marks real commands with a bot_command entity; this text has none.
    api.push_raw(
        {
            "message": {
                "message_id": 9000,
                "from": {"id": REPORTER, "is_bot": False, "first_name": "User1001"},
                "chat": {"id": REPORTER, "type": "private", "first_name": "User1001"},
                "date": 0,
                "text": "/3号楼门口的路灯不亮了",
            }
        }
    )
    await live.settle()
    assert api.sent_messages(REPORTER)[-1].callback_data == ["v1:rpt:ph:done"]


async def test_a_photo_that_cannot_be_fetched_is_answered(onboarded: Live, api: FakeBotApi) -> None:
    live = onboarded
    update_id = api.push_photo(REPORTER, jpeg_with_gps())
    for size in api.pushed_update(update_id)["message"]["photo"]:
        del api.files[size["file_id"]]  # gone before the bot asks for it
    await live.settle()
    assert "出了点问题" in content(api.sent_messages(REPORTER)[-1])


def test_long_texts_are_cut_by_telegram_length_rules() -> None:
    emoji = "📋" * 600  # 1,200 UTF-16 code units in 600 characters
    assert len(_fit(emoji, 1024)) == 512
    chunks = _split("第一行\n" + "字" * 5000, 4096)
    assert chunks[0] == "第一行" and "".join(chunks[1:]) == "字" * 5000
    assert all(len(chunk.encode("utf-16-le")) // 2 <= 4096 for chunk in _split(emoji * 8, 4096))


async def test_one_persons_updates_keep_their_order_while_others_are_served(
    onboarded: Live, api: FakeBotApi
) -> None:
    live = onboarded
    asked = await live.say(REPORTER, "/report")
    under = asked[-1]
    # Everything typed and pressed before the bot could answer any of it, with someone
    # else's onboarding interleaved: each person's inputs are handled in their order.
    api.push_callback(REPORTER, REPORTER, under.message_id, "v1:rpt:cat:sanitation")
    api.push_text(NEIGHBOUR, "/start")
    api.push_callback(REPORTER, REPORTER, under.message_id, "v1:rpt:urg:urgent")
    api.push_text(REPORTER, "垃圾桶满了好几天没人清运")
    api.push_photo(REPORTER, jpeg_with_gps())  # fetched over HTTP before it reaches the engine
    api.push_callback(REPORTER, REPORTER, under.message_id, "v1:rpt:ph:done")
    api.push_callback(REPORTER, REPORTER, under.message_id, "v1:rpt:loc:home")
    await live.settle()
    assert "v1:lang:zh_CN" in api.sent_messages(NEIGHBOUR)[-1].callback_data
    assert api.sent_messages(REPORTER)[-1].callback_data == ["v1:rpt:anon:no", "v1:rpt:anon:yes"]
    user = await live.repos(lambda r: r.users.by_identity("telegram", str(REPORTER)))
    draft = await live.repos(lambda r: r.conversations.get(user[0].id, "telegram"))
    assert (draft.step, draft.data["category"], draft.data["urgency"]) == (
        "anonymous",
        "sanitation",
        "urgent",
    )
    assert draft.data["description"] == "垃圾桶满了好几天没人清运" and len(draft.data["photos"]) == 1


async def test_a_file_goes_out_as_a_document_with_its_message_as_caption(
    onboarded: Live, api: FakeBotApi
) -> None:
    live = onboarded
    calendar = Document("shouwang-patrols.ics", "text/calendar", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    reply = Reply(Text("help.hint"), document=calendar)
    user = await live.repos(lambda r: r.users.by_identity("telegram", str(REPORTER)))
    await live.repos(lambda r: notify.to_user(r, live.community, user[0], reply, live.clock.now()))
    live.rt.delivery.wake()
    await live.settle()
    sent = api.sent_messages(REPORTER)[-1]
    assert (sent.method, sent.document_name, sent.document) == (
        "sendDocument",
        "shouwang-patrols.ics",
        calendar.data,
    )
    assert sent.caption and "/help" in sent.caption


async def test_live_location_updates_are_not_answered_where_nobody_asked(
    onboarded: Live, api: FakeBotApi
) -> None:
    live = onboarded
    # Sharing a live location sends it once as a message; then it moves by edits.
    update_ids: list[int] = []
    first = await live._after(
        REPORTER, lambda: update_ids.append(api.push_location(REPORTER, *INSIDE, live_period=900))
    )
    assert first, "the first live location is an ordinary location message"
    shared = api.pushed_update(update_ids[0])["message"]["message_id"]

    def move(step: float) -> None:
        api.push_location_update(REPORTER, shared, INSIDE[0] + step, INSIDE[1])

    assert await live._after(REPORTER, lambda: move(0.001)) == []
    asked = await live.say(REPORTER, "/report")
    # The report dialogue asks for a category: the moving dot is not an answer to that.
    assert await live._after(REPORTER, lambda: move(0.002)) == []
    user = await live.repos(lambda r: r.users.by_identity("telegram", str(REPORTER)))
    draft = await live.repos(lambda r: r.conversations.get(user[0].id, "telegram"))
    assert draft.step == "category" and asked
