"""Signed node requests carried by Flower messages (deployment mode).

In Flower deployment the ServerApp reaches a site's node through the site's SuperNode and
ClientApp, not over HTTP. It carries exactly the requests the coordinator's HTTP
federation sends (``/v1/tasks``, ``/v1/secagg/*``, ``/v1/info``), signed by the
coordinator's key with nonce and timestamp; the ClientApp replays each into the node's own
API, so training passes the same signature check, policy, gate, secure aggregation and
audit as every statistic. Each reply is signed by the node's Ed25519 identity over the
request's random ``nonce``, so the ServerApp knows which site answered and that the answer
was not replayed: the SuperLink in between can drop messages but not forge them.

Server → client, a ``query`` message with one ``ConfigRecord``:

- ``fedpsy-hello`` ``{nonce}``: who are you? Reply ``{site, identity, signature}`` —
  the site's name and identity public key (PEM), signed over ``nonce`` and the site.
- ``fedpsy-request`` ``{nonce, method, path, headers, body}``: one signed node request
  (``headers`` JSON). Reply ``{status, body, signature}``: the node API's status code and
  body, signed over ``nonce``, status and body.

Import this module only after :func:`schemas.training.env.flower_environment`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flwr.app import ConfigRecord, Message, MessageType, RecordDict

from schemas.errors import ErrorCode, FedpsyError
from schemas.keys import public_key_from_pem, public_pem

HELLO = "fedpsy-hello"
REQUEST = "fedpsy-request"
REPLY = "fedpsy-reply"


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\n".join(parts).encode("utf-8")).digest()


def _hello_digest(nonce: str, site: str, identity: str) -> bytes:
    return _digest("fedpsy-hello", nonce, site, identity)


def _reply_digest(nonce: str, status: int, body: str) -> bytes:
    return _digest("fedpsy-reply", nonce, str(status), body)


def _verified(key: Ed25519PublicKey, signature: str, digest: bytes) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), digest)
    except (InvalidSignature, ValueError):
        return False
    return True


# -- the ServerApp's side -----------------------------------------------------------------
def hello_message(node_id: int) -> tuple[Message, str]:
    """A hello to SuperNode ``node_id`` and its nonce."""
    nonce = secrets.token_hex(16)
    content = RecordDict({HELLO: ConfigRecord({"nonce": nonce})})
    return Message(content, dst_node_id=node_id, message_type=MessageType.QUERY), nonce


def request_message(
    node_id: int, method: str, path: str, headers: Mapping[str, str], body: bytes
) -> tuple[Message, str]:
    """One signed node request to SuperNode ``node_id`` and its nonce."""
    nonce = secrets.token_hex(16)
    record = ConfigRecord(
        {
            "nonce": nonce,
            "method": method,
            "path": path,
            "headers": json.dumps(dict(headers)),
            "body": body.decode("utf-8"),
        }
    )
    content = RecordDict({REQUEST: record})
    return Message(content, dst_node_id=node_id, message_type=MessageType.QUERY), nonce


@dataclass(frozen=True)
class Hello:
    site: str
    identity: Ed25519PublicKey


def hello_of(reply: Message, nonce: str) -> Hello | None:
    """The verified hello in ``reply`` (None for an error reply or a bad signature)."""
    if reply.has_error():
        return None
    record = reply.content.config_records.get(REPLY)
    if record is None or not {"site", "identity", "signature"} <= set(record):
        return None
    site, identity = str(record["site"]), str(record["identity"])
    try:
        key = public_key_from_pem(identity.encode("ascii"), "hello identity")
    except (FedpsyError, UnicodeEncodeError):
        return None
    if not _verified(key, str(record["signature"]), _hello_digest(nonce, site, identity)):
        return None
    return Hello(site, key)


def answer_of(reply: Message, nonce: str, identity: Ed25519PublicKey) -> tuple[int, bytes]:
    """The node's status and body in ``reply``, verified against the site's ``identity``."""
    if reply.has_error():
        raise FedpsyError(
            f"the site's ClientApp failed: {str(reply.error.reason)[:300]}",
            code=ErrorCode.SITE_UNREACHABLE,
        )
    record = reply.content.config_records.get(REPLY)
    if record is None or not {"status", "body", "signature"} <= set(record):
        raise FedpsyError("the site's reply carries no signed answer", code=ErrorCode.BAD_SIGNATURE)
    status, body = int(str(record["status"])), str(record["body"])
    if not _verified(identity, str(record["signature"]), _reply_digest(nonce, status, body)):
        raise FedpsyError(
            "the site's reply is not signed by its pinned identity", code=ErrorCode.BAD_SIGNATURE
        )
    return status, body.encode("utf-8")


# -- the ClientApp's side -----------------------------------------------------------------
def hello_reply(message: Message, site: str, key: Ed25519PrivateKey) -> Message:
    nonce = str(message.content.config_records[HELLO]["nonce"])
    identity = public_pem(key.public_key()).decode("ascii")
    signature = base64.b64encode(key.sign(_hello_digest(nonce, site, identity))).decode()
    record = ConfigRecord({"site": site, "identity": identity, "signature": signature})
    return Message(RecordDict({REPLY: record}), reply_to=message)


def answer_reply(message: Message, status: int, body: str, key: Ed25519PrivateKey) -> Message:
    nonce = str(message.content.config_records[REQUEST]["nonce"])
    signature = base64.b64encode(key.sign(_reply_digest(nonce, status, body))).decode()
    record = ConfigRecord({"status": status, "body": body, "signature": signature})
    return Message(RecordDict({REPLY: record}), reply_to=message)


@dataclass(frozen=True)
class CarriedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def request_of(message: Message) -> CarriedRequest | None:
    """The node request a message carries (None for a hello)."""
    record = message.content.config_records.get(REQUEST)
    if record is None:
        return None
    headers = json.loads(str(record["headers"]))
    return CarriedRequest(
        str(record["method"]),
        str(record["path"]),
        {str(k): str(v) for k, v in headers.items()},
        str(record["body"]).encode("utf-8"),
    )


def is_hello(message: Message) -> bool:
    return HELLO in message.content.config_records


__all__ = [
    "CarriedRequest",
    "Hello",
    "answer_of",
    "answer_reply",
    "hello_message",
    "hello_of",
    "hello_reply",
    "is_hello",
    "request_message",
    "request_of",
]
