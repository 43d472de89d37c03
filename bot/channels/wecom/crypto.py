"""The callback crypto (Tencent's "加解密方案说明"): wechatpy's WeChatCrypto, with a stricter refusal.

wechatpy checks the signature and decrypts. Its decryptor trusts the pad byte and the
length field, so a corrupt or truncated ciphertext comes out as garbage that fails as
"another corp id" (InvalidCorpIdException), just like a well-formed message for another
receive id. WeChat Work must be told the difference (400 for a broken request, 403 for
one not meant for this app: tests/bot/test_wecom_channel.py pins both), so when wechatpy
refuses the receive id, the framing is checked here before it counts as forbidden.
"""

from __future__ import annotations

import base64
import hmac
import struct

from wechatpy.crypto.base import WeChatCipher
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import WeChatSigner


class Forbidden(Exception):
    """Not from WeChat Work for this app: a wrong signature or another receive id (→ 403)."""


class Malformed(Exception):
    """Signed correctly but not a well-formed callback (→ 400)."""


class CallbackCrypto:
    def __init__(self, token: str, aes_key: str, receive_id: str) -> None:
        if len(base64.b64decode(aes_key + "=")) != 32:
            raise ValueError("EncodingAESKey must decode to 32 bytes")
        self._token = token
        self._crypto = WeChatCrypto(token, aes_key, receive_id)

    def open(self, signature: str, timestamp: str, nonce: str, encrypted: str) -> bytes:
        """The plaintext of a signed, encrypted callback field (the echostr or the Encrypt element)."""
        signer = WeChatSigner()
        signer.add_data(self._token, timestamp, nonce, encrypted)
        # wechatpy compares with !=; in constant time here, before it does.
        if not hmac.compare_digest(signer.signature.encode(), signature.lower().encode()):
            raise Forbidden("bad signature")
        try:
            # A dict skips wechatpy's own XML parsing: the envelope was parsed (safely) already.
            plain = self._crypto.decrypt_message({"Encrypt": encrypted}, signer.signature, timestamp, nonce)
        except InvalidSignatureException as error:
            raise Forbidden("bad signature") from error
        except InvalidCorpIdException as error:
            self._check_framing(encrypted)
            raise Forbidden("encrypted for another receive id") from error
        except (ValueError, IndexError, struct.error) as error:
            # Not base64, not whole AES blocks, too short, not UTF-8 (UnicodeDecodeError is a ValueError).
            raise Malformed("undecryptable ciphertext") from error
        return str(plain).encode()

    def _check_framing(self, encrypted: str) -> None:
        """Malformed unless the plaintext is well framed: PKCS#7 padding to 32 bytes, then
        16 random bytes, a 4-byte length and that many message bytes before the receive id."""
        plain = WeChatCipher(self._crypto.key).decrypt(base64.b64decode(encrypted))
        pad = plain[-1]
        if not 1 <= pad <= 32 or plain[-pad:] != bytes([pad]) * pad:
            raise Malformed("bad padding")
        content = plain[16:-pad]
        if len(content) < 4 or 4 + int.from_bytes(content[:4], "big") > len(content):
            raise Malformed("length beyond the payload")
