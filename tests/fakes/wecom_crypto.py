"""WeChat Work (企业微信) callback crypto, written independently of wechatpy, for tests.

The bot decrypts callbacks with wechatpy; tests build them with this module. Because
the two implementations share no code, a mistake in how the bot calls wechatpy (wrong
receive id, signature over the wrong string, padding assumptions) fails a test instead
of being mirrored by the test helper. The algorithm follows Tencent's "加解密方案说明"
(https://developer.work.weixin.qq.com/document/path/91144):

* EncodingAESKey is 43 base64 characters; ``AESKey = base64decode(EncodingAESKey + "=")``
  (32 bytes); AES-256-CBC with ``IV = AESKey[:16]``.
* ``rand_msg = random(16 bytes) + msg_len(4 bytes, big-endian) + msg + receive_id``,
  PKCS#7-padded to a multiple of **32** (not the AES block size of 16);
  ``msg_encrypt = base64(AES_Encrypt(rand_msg))``.
* ``msg_signature = sha1(sorted(token, timestamp, nonce, msg_encrypt) joined)`` in hex.

It also builds the plaintext XML that WeChat Work sends for messages and events, so
handler tests can feed realistic callbacks end to end.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import struct
import time
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "DEFAULT_AGENT_ID",
    "SAMPLE_CORP_ID",
    "SAMPLE_ENCODING_AES_KEY",
    "SAMPLE_MSG_BODY",
    "SAMPLE_MSG_ENCRYPT",
    "SAMPLE_MSG_FIELDS",
    "SAMPLE_MSG_NONCE",
    "SAMPLE_MSG_SIGNATURE",
    "SAMPLE_MSG_TIMESTAMP",
    "SAMPLE_TOKEN",
    "SAMPLE_VERIFY_ECHOSTR",
    "SAMPLE_VERIFY_ECHO_PLAIN",
    "SAMPLE_VERIFY_MSG_SIGNATURE",
    "SAMPLE_VERIFY_NONCE",
    "SAMPLE_VERIFY_TIMESTAMP",
    "SDK_SAMPLE_CORP_ID",
    "SDK_SAMPLE_ENCODING_AES_KEY",
    "SDK_SAMPLE_MSG_BODY",
    "SDK_SAMPLE_MSG_NONCE",
    "SDK_SAMPLE_MSG_PLAINTEXT",
    "SDK_SAMPLE_MSG_SIGNATURE",
    "SDK_SAMPLE_MSG_TIMESTAMP",
    "SDK_SAMPLE_TOKEN",
    "SDK_SAMPLE_VERIFY_ECHOSTR",
    "SDK_SAMPLE_VERIFY_ECHO_PLAIN",
    "SDK_SAMPLE_VERIFY_MSG_SIGNATURE",
    "SDK_SAMPLE_VERIFY_NONCE",
    "SDK_SAMPLE_VERIFY_TIMESTAMP",
    "WeComCryptoError",
    "aes_key_bytes",
    "build_callback",
    "build_verify_query",
    "check_signature",
    "decrypt",
    "encrypt",
    "enter_agent_event",
    "event_message",
    "extract_encrypt",
    "image_message",
    "location_message",
    "open_callback",
    "sign",
    "template_card_event",
    "text_message",
]

# --------------------------------------------------------------------------- sample vectors
#
# Tencent's published sample (Token / EncodingAESKey / CorpID), used throughout the
# official callback docs and the WXBizMsgCrypt sample code in every language.
# Sources: the worked example in "加解密方案说明" (developer.work.weixin.qq.com
# document/path/91144, and its older copies), Tencent's weworkapi_php callback/Sample.php
# and the C# WXBizMsgCrypt Sample.cs, which all quote these values.
SAMPLE_TOKEN = "QDG6eK"
SAMPLE_ENCODING_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SAMPLE_CORP_ID = "wx5823bf96d3bd56c7"

# "使用示例一：验证回调URL" in the Sample.* files (PHP/Python/C#):
# GET /cgi-bin/wxpush?msg_signature=5c45ff5e…&timestamp=1409659589&nonce=263014780&echostr=P9nA…
SAMPLE_VERIFY_MSG_SIGNATURE = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
SAMPLE_VERIFY_TIMESTAMP = "1409659589"
SAMPLE_VERIFY_NONCE = "263014780"
SAMPLE_VERIFY_ECHOSTR = (
    "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
)
# The samples do not print the decrypted echostr; independent public test suites (Go,
# PHP and Python ports of WXBizMsgCrypt) all assert this value for the vector above.
SAMPLE_VERIFY_ECHO_PLAIN = "1616140317555161061"

# "使用示例二：对用户回复的消息解密" / the doc's "举例说明":
# POST /cgi-bin/wxpush?msg_signature=477715d1…&timestamp=1409659813&nonce=1372623149
SAMPLE_MSG_SIGNATURE = "477715d11cdb4164915debcba66cb864d751f3e6"
SAMPLE_MSG_TIMESTAMP = "1409659813"
SAMPLE_MSG_NONCE = "1372623149"
SAMPLE_MSG_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/"
    "sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+"
    "HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSr"
    "XJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m"
    "3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
# The POST body as the doc shows it (with the AgentID element it documents).
SAMPLE_MSG_BODY = (
    f"<xml><ToUserName><![CDATA[{SAMPLE_CORP_ID}]]></ToUserName>"
    f"<Encrypt><![CDATA[{SAMPLE_MSG_ENCRYPT}]]></Encrypt>"
    "<AgentID><![CDATA[218]]></AgentID></xml>"
)
# "解密后得到明文为" in the doc; the doc pretty-prints the XML, so compare fields.
SAMPLE_MSG_FIELDS: Mapping[str, str] = {
    "ToUserName": SAMPLE_CORP_ID,
    "FromUserName": "mycreate",
    "CreateTime": "1409659813",
    "MsgType": "text",
    "Content": "hello",
    "MsgId": "4561255354251345929",
    "AgentID": "218",
}

# A second, self-consistent vector from Tencent's own Python SDK sample
# (github.com/sbzhu/weworkapi_python, callback/Sample.py, by jonyqin). It uses a "ww"
# corp id and non-ASCII content, so it exercises byte-length handling.
SDK_SAMPLE_TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
SDK_SAMPLE_ENCODING_AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
SDK_SAMPLE_CORP_ID = "ww1436e0e65a779aee"
SDK_SAMPLE_VERIFY_MSG_SIGNATURE = "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb"
SDK_SAMPLE_VERIFY_TIMESTAMP = "1476416373"
SDK_SAMPLE_VERIFY_NONCE = "47744683"
SDK_SAMPLE_VERIFY_ECHOSTR = (
    "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
)
# Not printed by the sample; the tests of a public third-party Python port (package
# ``wecom_crypto``) assert this value and the decrypted message below.
SDK_SAMPLE_VERIFY_ECHO_PLAIN = "1288432023552776189"
SDK_SAMPLE_MSG_SIGNATURE = "0c3914025cb4b4d68103f6bfc8db550f79dcf48e"
SDK_SAMPLE_MSG_TIMESTAMP = "1476422779"
SDK_SAMPLE_MSG_NONCE = "1597212914"
SDK_SAMPLE_MSG_BODY = (
    f"<xml><ToUserName><![CDATA[{SDK_SAMPLE_CORP_ID}]]></ToUserName>\n"
    "<Encrypt><![CDATA[Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTk"
    "AgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5"
    "jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6"
    "iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+]]></Encrypt>\n"
    "<AgentID><![CDATA[1000002]]></AgentID>\n</xml>"
)
# The same Sample.py uses this text as its reply example; it is exactly what the request
# above decrypts to.
SDK_SAMPLE_MSG_PLAINTEXT = (
    "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>"
    "<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
    "<MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
)

# The first self-built app of a corp gets agent id 1000002 (1000001 is reserved), so it
# is what real callbacks most often carry.
DEFAULT_AGENT_ID = 1000002

_BLOCK = 32  # WeChat Work pads to 32 bytes, not to AES's 16-byte block.
_ENCRYPT_RE = re.compile(r"<Encrypt>\s*<!\[CDATA\[(.*?)\]\]>\s*</Encrypt>|<Encrypt>([^<]*)</Encrypt>", re.S)
_AGENT_RE = re.compile(r"<AgentID>\s*(?:<!\[CDATA\[)?\s*(\d+)\s*(?:\]\]>)?\s*</AgentID>")


class WeComCryptoError(ValueError):
    """A key, signature or ciphertext that WeChat Work's scheme would reject."""


# --------------------------------------------------------------------------- primitives


def sign(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """``msg_signature``: sha1 (hex) of the four strings sorted and concatenated."""
    return hashlib.sha1("".join(sorted((token, timestamp, nonce, encrypt))).encode()).hexdigest()


def check_signature(token: str, timestamp: str, nonce: str, encrypt: str, msg_signature: str) -> bool:
    # Constant-time, as a receiver should do; it costs nothing here.
    return hmac.compare_digest(sign(token, timestamp, nonce, encrypt), msg_signature)


def aes_key_bytes(aes_key_b64_43: str) -> bytes:
    """Decode a 43-character EncodingAESKey to the 32-byte AES key."""
    if len(aes_key_b64_43) != 43:
        raise WeComCryptoError(f"EncodingAESKey must be 43 characters, got {len(aes_key_b64_43)}")
    try:
        key = base64.b64decode(aes_key_b64_43 + "=", validate=True)
    except binascii.Error as exc:
        raise WeComCryptoError(f"EncodingAESKey is not base64: {exc}") from None
    if len(key) != 32:  # pragma: no cover - 43 valid chars + "=" always give 32 bytes
        raise WeComCryptoError("EncodingAESKey does not decode to 32 bytes")
    return key


def _cipher(key: bytes) -> Cipher[modes.CBC]:
    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def encrypt(aes_key_b64_43: str, receive_id: str, plaintext: bytes, random16: bytes | None = None) -> str:
    """Encrypt ``plaintext`` for ``receive_id`` (the corp id for a self-built app).

    ``random16`` pins the 16 leading random bytes so results are reproducible.
    """
    key = aes_key_bytes(aes_key_b64_43)
    prefix = os.urandom(16) if random16 is None else random16
    if len(prefix) != 16:
        raise WeComCryptoError("random16 must be exactly 16 bytes")
    body = prefix + struct.pack(">I", len(plaintext)) + plaintext + receive_id.encode()
    pad = _BLOCK - len(body) % _BLOCK  # 1..32; a full block when already aligned
    body += bytes([pad]) * pad
    encryptor = _cipher(key).encryptor()
    return base64.b64encode(encryptor.update(body) + encryptor.finalize()).decode("ascii")


def decrypt(aes_key_b64_43: str, ciphertext_b64: str) -> tuple[bytes, str]:
    """Decrypt ``msg_encrypt``; return ``(msg, receive_id)``.

    Stricter than Tencent's sample code (which trusts the pad byte): padding and the
    length field are validated, so a malformed ciphertext raises instead of yielding
    garbage that a test might accidentally accept.
    """
    key = aes_key_bytes(aes_key_b64_43)
    try:
        raw = base64.b64decode(ciphertext_b64, validate=True)
    except binascii.Error as exc:
        raise WeComCryptoError(f"ciphertext is not base64: {exc}") from None
    if not raw or len(raw) % 16:
        raise WeComCryptoError(f"ciphertext length {len(raw)} is not a positive multiple of 16")
    decryptor = _cipher(key).decryptor()
    padded = decryptor.update(raw) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= _BLOCK or padded[-pad:] != bytes([pad]) * pad:
        raise WeComCryptoError("bad PKCS#7 padding (wrong key?)")
    content = padded[:-pad]
    if len(content) < 20:
        raise WeComCryptoError("decrypted payload too short")
    (length,) = struct.unpack(">I", content[16:20])
    if 20 + length > len(content):
        raise WeComCryptoError(f"message length {length} exceeds payload")
    message = content[20 : 20 + length]
    try:
        receive_id = content[20 + length :].decode()
    except UnicodeDecodeError:
        raise WeComCryptoError("receive id is not UTF-8") from None
    return message, receive_id


# --------------------------------------------------------------------------- callbacks


def _timestamp() -> str:
    return str(int(time.time()))


def _nonce() -> str:
    # Real nonces are decimal strings of up to ten digits.
    return str(secrets.randbelow(10**10))


def build_callback(
    token: str,
    aes_key: str,
    corp_id: str,
    xml_plaintext: str | bytes,
    timestamp: str | None = None,
    nonce: str | None = None,
    *,
    agent_id: int | str | None = None,
) -> tuple[dict[str, str], str]:
    """Encrypt an inbound message/event as WeChat Work POSTs it to the callback URL.

    Returns ``(query_params, body)``: ``query_params`` holds ``msg_signature``,
    ``timestamp`` and ``nonce``; ``body`` is the outer XML. ``agent_id`` defaults to
    the ``AgentID`` inside the plaintext (empty when it has none).
    """
    plain = xml_plaintext.encode() if isinstance(xml_plaintext, str) else xml_plaintext
    if agent_id is None:
        match = _AGENT_RE.search(plain.decode(errors="replace"))
        agent_id = match.group(1) if match else ""
    timestamp = timestamp or _timestamp()
    nonce = nonce or _nonce()
    encrypted = encrypt(aes_key, corp_id, plain)
    query = {
        "msg_signature": sign(token, timestamp, nonce, encrypted),
        "timestamp": timestamp,
        "nonce": nonce,
    }
    body = (
        f"<xml><ToUserName>{_cdata(corp_id)}</ToUserName>"
        f"<Encrypt>{_cdata(encrypted)}</Encrypt>"
        f"<AgentID>{_cdata(str(agent_id))}</AgentID></xml>"
    )
    return query, body


def build_verify_query(
    token: str,
    aes_key: str,
    corp_id: str,
    echo_plain: str,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Query parameters of the GET URL verification; the answer must be ``echo_plain``.

    ``echostr`` is returned raw (with ``+``, ``/``, ``=``): pass the dict as ``params=``
    so the HTTP client URL-encodes it, as WeChat Work does.
    """
    timestamp = timestamp or _timestamp()
    nonce = nonce or _nonce()
    echostr = encrypt(aes_key, corp_id, echo_plain.encode())
    return {
        "msg_signature": sign(token, timestamp, nonce, echostr),
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": echostr,
    }


def extract_encrypt(body: str | bytes) -> str:
    """The ``Encrypt`` element of an outer callback (or passive-reply) XML."""
    text = body.decode() if isinstance(body, bytes) else body
    match = _ENCRYPT_RE.search(text)
    if match is None:
        raise WeComCryptoError("no <Encrypt> element in body")
    return (match.group(1) if match.group(1) is not None else match.group(2)).strip()


def open_callback(
    token: str,
    aes_key: str,
    corp_id: str,
    query: Mapping[str, str],
    body: str | bytes,
) -> bytes:
    """Verify and decrypt a callback the way a receiver must; return the plaintext XML.

    The inverse of :func:`build_callback`, usable on the official samples too.
    """
    encrypted = extract_encrypt(body)
    if not check_signature(token, query["timestamp"], query["nonce"], encrypted, query["msg_signature"]):
        raise WeComCryptoError("msg_signature mismatch")
    message, receive_id = decrypt(aes_key, encrypted)
    if receive_id != corp_id:
        raise WeComCryptoError(f"receive id {receive_id!r} is not {corp_id!r}")
    return message


# --------------------------------------------------------------------------- inbound XML
#
# Layouts follow the "消息格式" / "事件格式" pages (document/path/90239, 90240): string
# fields in CDATA, numbers bare, AgentID last except where events add trailing fields.


def _cdata(value: str) -> str:
    # "]]>" cannot appear inside CDATA; split it across two sections as XML requires.
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _header(to_corp: str, from_user: str, msg_type: str, create_time: int | None) -> str:
    created = int(time.time()) if create_time is None else create_time
    return (
        f"<ToUserName>{_cdata(to_corp)}</ToUserName>"
        f"<FromUserName>{_cdata(from_user)}</FromUserName>"
        f"<CreateTime>{created}</CreateTime>"
        f"<MsgType>{_cdata(msg_type)}</MsgType>"
    )


def text_message(
    to_corp: str,
    from_user: str,
    content: str,
    msg_id: int | str,
    agent_id: int | str = DEFAULT_AGENT_ID,
    create_time: int | None = None,
) -> str:
    return (
        f"<xml>{_header(to_corp, from_user, 'text', create_time)}"
        f"<Content>{_cdata(content)}</Content>"
        f"<MsgId>{msg_id}</MsgId><AgentID>{agent_id}</AgentID></xml>"
    )


def image_message(
    to_corp: str,
    from_user: str,
    pic_url: str,
    media_id: str,
    msg_id: int | str,
    agent_id: int | str = DEFAULT_AGENT_ID,
    create_time: int | None = None,
) -> str:
    """An image a member sent; the bytes are fetched with ``media/get`` (valid 3 days)."""
    return (
        f"<xml>{_header(to_corp, from_user, 'image', create_time)}"
        f"<PicUrl>{_cdata(pic_url)}</PicUrl><MediaId>{_cdata(media_id)}</MediaId>"
        f"<MsgId>{msg_id}</MsgId><AgentID>{agent_id}</AgentID></xml>"
    )


def location_message(
    to_corp: str,
    from_user: str,
    lat: float,
    lon: float,
    scale: int,
    label: str,
    msg_id: int | str,
    agent_id: int | str = DEFAULT_AGENT_ID,
    create_time: int | None = None,
) -> str:
    """A shared location. Location_X is the *latitude*, Location_Y the longitude."""
    return (
        f"<xml>{_header(to_corp, from_user, 'location', create_time)}"
        f"<Location_X>{lat}</Location_X><Location_Y>{lon}</Location_Y>"
        f"<Scale>{scale}</Scale><Label>{_cdata(label)}</Label>"
        f"<MsgId>{msg_id}</MsgId><AgentID>{agent_id}</AgentID>"
        # WeChat Work adds AppType=wxwork (plain WeChat omits it).
        f"<AppType>{_cdata('wxwork')}</AppType></xml>"
    )


def event_message(
    to_corp: str,
    from_user: str,
    event: str,
    event_key: str | None = "",
    extra: Mapping[str, str] | None = None,
    agent_id: int | str = DEFAULT_AGENT_ID,
    create_time: int | None = None,
    *,
    trailing_xml: str = "",
) -> str:
    """An event callback. Events carry no MsgId: receivers deduplicate them by
    FromUserName + CreateTime.

    ``event_key=None`` omits ``EventKey`` (``subscribe`` has none; ``enter_agent`` sends
    an empty one). ``extra`` adds string fields after it, in order; ``trailing_xml`` is
    raw XML placed after ``AgentID`` (e.g. ``SelectedItems``).
    """
    parts = [f"<xml>{_header(to_corp, from_user, 'event', create_time)}<Event>{_cdata(event)}</Event>"]
    if event_key is not None:
        parts.append(f"<EventKey>{_cdata(event_key)}</EventKey>")
    for name, value in (extra or {}).items():
        parts.append(f"<{name}>{_cdata(value)}</{name}>")
    parts.append(f"<AgentID>{agent_id}</AgentID>{trailing_xml}</xml>")
    return "".join(parts)


def enter_agent_event(
    to_corp: str,
    from_user: str,
    agent_id: int | str = DEFAULT_AGENT_ID,
    create_time: int | None = None,
) -> str:
    """A member opened the app (sent at most once a day per member)."""
    return event_message(to_corp, from_user, "enter_agent", "", None, agent_id, create_time)


def template_card_event(
    to_corp: str,
    from_user: str,
    event_key: str,
    task_id: str,
    card_type: str = "button_interaction",
    response_code: str = "",
    agent_id: int | str = DEFAULT_AGENT_ID,
    create_time: int | None = None,
    *,
    selected_items: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """A click on a template card button (``Event=template_card_event``).

    ``event_key`` is the clicked button's ``key``, ``task_id`` the card's ``task_id``;
    ``response_code`` may be used once, within 72 h, to update the card.
    ``selected_items`` maps question keys to option ids for vote/multiple-choice cards.
    """
    trailing = ""
    if selected_items:
        items = "".join(
            f"<SelectedItem><QuestionKey>{_cdata(question)}</QuestionKey><OptionIds>"
            + "".join(f"<OptionId>{_cdata(option)}</OptionId>" for option in options)
            + "</OptionIds></SelectedItem>"
            for question, options in selected_items.items()
        )
        trailing = f"<SelectedItems>{items}</SelectedItems>"
    extra = {"TaskId": task_id, "CardType": card_type, "ResponseCode": response_code}
    return event_message(
        to_corp,
        from_user,
        "template_card_event",
        event_key,
        extra,
        agent_id,
        create_time,
        trailing_xml=trailing,
    )
