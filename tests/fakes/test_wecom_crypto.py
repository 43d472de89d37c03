"""The test-side WeChat Work crypto: Tencent's sample vectors, round trips, and a
cross-check against wechatpy 1.8.18 (the implementation the bot uses)."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import pytest
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

from tests.fakes import wecom_crypto as wc

KEY = wc.SAMPLE_ENCODING_AES_KEY
CORP = wc.SAMPLE_CORP_ID
TOKEN = wc.SAMPLE_TOKEN


def _fields(xml: bytes | str) -> dict[str, str]:
    root = ET.fromstring(xml)
    return {child.tag: (child.text or "") for child in root}


# --------------------------------------------------------------------------- sample vectors


def test_official_verify_sample_signature_and_echostr() -> None:
    signature = wc.sign(TOKEN, wc.SAMPLE_VERIFY_TIMESTAMP, wc.SAMPLE_VERIFY_NONCE, wc.SAMPLE_VERIFY_ECHOSTR)
    assert signature == wc.SAMPLE_VERIFY_MSG_SIGNATURE
    message, receive_id = wc.decrypt(KEY, wc.SAMPLE_VERIFY_ECHOSTR)
    assert message.decode() == wc.SAMPLE_VERIFY_ECHO_PLAIN
    assert receive_id == CORP


def test_official_message_sample_signature_and_plaintext() -> None:
    assert wc.extract_encrypt(wc.SAMPLE_MSG_BODY) == wc.SAMPLE_MSG_ENCRYPT
    signature = wc.sign(TOKEN, wc.SAMPLE_MSG_TIMESTAMP, wc.SAMPLE_MSG_NONCE, wc.SAMPLE_MSG_ENCRYPT)
    assert signature == wc.SAMPLE_MSG_SIGNATURE
    query = {
        "msg_signature": wc.SAMPLE_MSG_SIGNATURE,
        "timestamp": wc.SAMPLE_MSG_TIMESTAMP,
        "nonce": wc.SAMPLE_MSG_NONCE,
    }
    plaintext = wc.open_callback(TOKEN, KEY, CORP, query, wc.SAMPLE_MSG_BODY)
    assert _fields(plaintext) == dict(wc.SAMPLE_MSG_FIELDS)


def test_sdk_sample_vectors() -> None:
    key = wc.SDK_SAMPLE_ENCODING_AES_KEY
    token = wc.SDK_SAMPLE_TOKEN
    assert (
        wc.sign(
            token, wc.SDK_SAMPLE_VERIFY_TIMESTAMP, wc.SDK_SAMPLE_VERIFY_NONCE, wc.SDK_SAMPLE_VERIFY_ECHOSTR
        )
        == wc.SDK_SAMPLE_VERIFY_MSG_SIGNATURE
    )
    assert wc.decrypt(key, wc.SDK_SAMPLE_VERIFY_ECHOSTR) == (
        wc.SDK_SAMPLE_VERIFY_ECHO_PLAIN.encode(),
        wc.SDK_SAMPLE_CORP_ID,
    )
    query = {
        "msg_signature": wc.SDK_SAMPLE_MSG_SIGNATURE,
        "timestamp": wc.SDK_SAMPLE_MSG_TIMESTAMP,
        "nonce": wc.SDK_SAMPLE_MSG_NONCE,
    }
    plaintext = wc.open_callback(token, key, wc.SDK_SAMPLE_CORP_ID, query, wc.SDK_SAMPLE_MSG_BODY)
    # The length prefix counts UTF-8 bytes ("你好" is 6), which this vector pins down.
    assert plaintext.decode() == wc.SDK_SAMPLE_MSG_PLAINTEXT


def test_wechatpy_accepts_the_official_samples() -> None:
    # Sanity check that the library under our bot agrees with the same vectors.
    crypto = WeChatCrypto(TOKEN, KEY, CORP)
    echo = crypto.check_signature(
        wc.SAMPLE_VERIFY_MSG_SIGNATURE,
        wc.SAMPLE_VERIFY_TIMESTAMP,
        wc.SAMPLE_VERIFY_NONCE,
        wc.SAMPLE_VERIFY_ECHOSTR,
    )
    assert echo == wc.SAMPLE_VERIFY_ECHO_PLAIN
    xml = crypto.decrypt_message(
        wc.SAMPLE_MSG_BODY, wc.SAMPLE_MSG_SIGNATURE, wc.SAMPLE_MSG_TIMESTAMP, wc.SAMPLE_MSG_NONCE
    )
    assert _fields(xml)["Content"] == "hello"


# --------------------------------------------------------------------------- own round trips


@pytest.mark.parametrize("size", [0, 1, 11, 12, 13, 43, 44, 45, 100, 1000])
def test_round_trip_and_padding_to_32(size: int) -> None:
    # Sizes around 32-byte boundaries (16 + 4 + msg + 18-byte corp id) catch off-by-one
    # padding, including the full 32-byte pad when the payload is already aligned.
    message = bytes(range(256)) * 4
    message = message[:size]
    encrypted = wc.encrypt(KEY, CORP, message)
    raw = base64.b64decode(encrypted)
    assert len(raw) % 32 == 0
    assert len(raw) > 16 + 4 + size + len(CORP)
    assert wc.decrypt(KEY, encrypted) == (message, CORP)


def test_fixed_random_prefix_is_deterministic() -> None:
    prefix = b"0123456789abcdef"
    assert wc.encrypt(KEY, CORP, b"x", prefix) == wc.encrypt(KEY, CORP, b"x", prefix)
    assert wc.encrypt(KEY, CORP, b"x") != wc.encrypt(KEY, CORP, b"x")


def test_rejects_bad_inputs() -> None:
    with pytest.raises(wc.WeComCryptoError):
        wc.aes_key_bytes(KEY[:-1])
    with pytest.raises(wc.WeComCryptoError):
        wc.aes_key_bytes("!" * 43)
    with pytest.raises(wc.WeComCryptoError):
        wc.encrypt(KEY, CORP, b"x", b"short")
    other_key = "A" * 43
    with pytest.raises(wc.WeComCryptoError):
        # A wrong key almost never yields valid 1..32 padding plus a sane length.
        wc.decrypt(other_key, wc.SAMPLE_MSG_ENCRYPT)
    with pytest.raises(wc.WeComCryptoError):
        wc.decrypt(KEY, "not base64!")
    query, body = wc.build_callback(TOKEN, KEY, CORP, "<xml/>")
    with pytest.raises(wc.WeComCryptoError, match="signature"):
        wc.open_callback("other-token", KEY, CORP, query, body)
    with pytest.raises(wc.WeComCryptoError, match="receive id"):
        wc.open_callback(TOKEN, KEY, "ww-other", query, body)


def test_build_callback_shape() -> None:
    xml = wc.text_message(CORP, "zhangsan", "你好 ]]> <b>", 42, agent_id=1000005, create_time=1700000000)
    query, body = wc.build_callback(TOKEN, KEY, CORP, xml, timestamp="1700000001", nonce="12345")
    assert query["timestamp"] == "1700000001" and query["nonce"] == "12345"
    outer = _fields(body)
    assert list(outer) == ["ToUserName", "Encrypt", "AgentID"]
    assert outer["ToUserName"] == CORP
    assert outer["AgentID"] == "1000005"  # taken from the plaintext
    assert query["msg_signature"] == wc.sign(TOKEN, "1700000001", "12345", outer["Encrypt"])
    assert wc.open_callback(TOKEN, KEY, CORP, query, body).decode() == xml


def test_build_verify_query_round_trip() -> None:
    query = wc.build_verify_query(TOKEN, KEY, CORP, "echo-123")
    assert set(query) == {"msg_signature", "timestamp", "nonce", "echostr"}
    assert query["nonce"].isdigit() and query["timestamp"].isdigit()
    assert wc.check_signature(
        TOKEN, query["timestamp"], query["nonce"], query["echostr"], query["msg_signature"]
    )
    assert wc.decrypt(KEY, query["echostr"]) == (b"echo-123", CORP)


# --------------------------------------------------------------------------- cross-check with wechatpy


def test_wechatpy_verifies_our_url_verification() -> None:
    crypto = WeChatCrypto(TOKEN, KEY, CORP)
    query = wc.build_verify_query(TOKEN, KEY, CORP, "5927782489442352469")
    echo = crypto.check_signature(
        query["msg_signature"], query["timestamp"], query["nonce"], query["echostr"]
    )
    assert echo == "5927782489442352469"
    with pytest.raises(InvalidSignatureException):
        crypto.check_signature("0" * 40, query["timestamp"], query["nonce"], query["echostr"])


@pytest.mark.parametrize(
    "xml",
    [
        wc.text_message(
            CORP, "zhangsan", "楼道里有电动车在充电 🔋", 1234567890123456, create_time=1700000000
        ),
        wc.image_message(CORP, "lisi", "https://wework.qpic.cn/x/0", "MEDIA_1", 77, create_time=1700000001),
        wc.location_message(CORP, "wangwu", 23.134521, 113.358803, 15, "天河区", 78, create_time=1700000002),
        wc.enter_agent_event(CORP, "zhaoliu", create_time=1700000003),
        wc.event_message(CORP, "zhaoliu", "subscribe", event_key=None, create_time=1700000004),
        wc.template_card_event(CORP, "zhangsan", "confirm:42", "task-42", response_code="RC", create_time=5),
    ],
    ids=["text", "image", "location", "enter_agent", "subscribe", "template_card_event"],
)
def test_wechatpy_decrypts_our_callbacks(xml: str) -> None:
    crypto = WeChatCrypto(TOKEN, KEY, CORP)
    query, body = wc.build_callback(TOKEN, KEY, CORP, xml)
    decrypted = crypto.decrypt_message(body, query["msg_signature"], query["timestamp"], query["nonce"])
    assert decrypted == xml
    with pytest.raises(InvalidCorpIdException):
        WeChatCrypto(TOKEN, KEY, "ww-someone-else").decrypt_message(
            body, query["msg_signature"], query["timestamp"], query["nonce"]
        )


def test_we_decrypt_what_wechatpy_encrypts() -> None:
    # The other direction: a passive reply encrypted by wechatpy opens with our code.
    crypto = WeChatCrypto(TOKEN, KEY, CORP)
    reply = crypto.encrypt_message("<xml><Content><![CDATA[收到]]></Content></xml>", "999", "1700000000")
    fields = _fields(reply)
    query = {
        "msg_signature": fields["MsgSignature"],
        "timestamp": fields["TimeStamp"],
        "nonce": fields["Nonce"],
    }
    assert wc.open_callback(TOKEN, KEY, CORP, query, reply).decode() == (
        "<xml><Content><![CDATA[收到]]></Content></xml>"
    )


# --------------------------------------------------------------------------- inbound XML builders


def test_builders_parse_with_wechatpy() -> None:
    text = parse_message(wc.text_message(CORP, "zhangsan", "a ]]> b", 9, agent_id=1000002, create_time=1))
    assert (text.type, text.content, text.source, text.target, text.id, text.agent) == (
        "text",
        "a ]]> b",
        "zhangsan",
        CORP,
        9,
        1000002,
    )
    image = parse_message(wc.image_message(CORP, "lisi", "http://pic", "MID", 10, create_time=2))
    assert (image.type, image.image, image.media_id) == ("image", "http://pic", "MID")
    location = parse_message(wc.location_message(CORP, "wangwu", 23.1, 113.3, 15, "天河", 11))
    # wechatpy.enterprise leaves the coordinates and scale as strings.
    assert (location.type, location.location, location.scale, location.label) == (
        "location",
        ("23.1", "113.3"),
        "15",
        "天河",
    )
    assert parse_message(wc.enter_agent_event(CORP, "u")).event == "enter_agent"
    assert parse_message(wc.event_message(CORP, "u", "subscribe", event_key=None)).event == "subscribe"


def test_template_card_event_fields() -> None:
    xml = wc.template_card_event(
        CORP,
        "zhangsan",
        "vote",
        "task-1",
        card_type="vote_interaction",
        response_code="RC1",
        create_time=1700000000,
        selected_items={"q1": ["o1", "o2"]},
    )
    root = ET.fromstring(xml)
    fields = {child.tag: child.text for child in root if len(child) == 0}
    assert fields["Event"] == "template_card_event"
    assert fields["EventKey"] == "vote"
    assert fields["TaskId"] == "task-1"
    assert fields["CardType"] == "vote_interaction"
    assert fields["ResponseCode"] == "RC1"
    assert fields["AgentID"] == str(wc.DEFAULT_AGENT_ID)
    assert "MsgId" not in fields  # events are deduplicated by FromUserName + CreateTime
    assert [o.text for o in root.iterfind("SelectedItems/SelectedItem/OptionIds/OptionId")] == ["o1", "o2"]
    # wechatpy 1.8.18 has no class for it: the bot must read the XML itself.
    assert parse_message(xml).type == "unknown"
