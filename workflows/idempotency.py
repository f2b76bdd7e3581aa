"""`Idempotency-Key` on the requests that create or start something (submit, trigger, new
execution, re-run, re-trigger): a retry with the same key gets the first answer again and nothing
runs twice.

The key (1 to 255 printable ASCII characters) belongs to the user who sent it. The first request
with it claims it by inserting its IdempotencyRecord at the start of its transaction; what the
request creates and its answer are written in that same transaction, so a crash leaves both or
neither. A concurrent twin waits on the record's unique index until the first commits, then
replays its answer. Only successful answers are kept: a refused request created nothing, so its
retry is simply tried again. The same key with another request (method, path and body, as sent)
is refused with 422.

Records live IDEMPOTENCY_TTL_HOURS. They need no reaper: claiming a key first deletes the user's
expired records (an indexed delete, outside the claiming transaction so it holds no lock for
long); a user who never sends a key again leaves at most one TTL's worth behind.
"""

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from workflows.models import IdempotencyRecord
from workflows.services import ServiceError

HEADER = "Idempotency-Key"
# Printable ASCII; no space at either end, which HTTP proxies may strip on the way.
KEY = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?")


class IdempotencyKeyReused(ServiceError):
    """The key was first sent with another request."""

    status = 422
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Answer:
    """An answer to give: status code and body, and whether it is a replay of the first one."""

    status_code: int
    body: object
    replayed: bool = False


def idempotency_key_parse(raw: str) -> str:
    """The key as sent, or a 400 when it is not 1 to 255 printable ASCII characters."""
    if not KEY.fullmatch(raw):
        raise ServiceError(
            f"{HEADER} must be 1 to 255 printable ASCII characters, with no space at either end",
            code="invalid_idempotency_key",
            details={"length": len(raw)},
        )
    return raw


def request_fingerprint(*, method: str, path: str, body: bytes) -> str:
    """What makes two requests the same request: method, path and body, hashed."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def idempotent_answer(*, user, key: str, fingerprint: str, answer: Callable[[], Answer]) -> Answer:
    """`answer()` run once per user and key, inside the transaction that records its answer; a
    retry of the same request gets that answer (replayed), another request with the key a 422."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)
    IdempotencyRecord.objects.filter(user=user, created_at__lt=cutoff).delete()
    claimed = False
    try:
        with transaction.atomic():
            # A twin in flight holds this key in the unique index: the insert waits for it.
            record = IdempotencyRecord.objects.create(user=user, key=key, request_fingerprint=fingerprint)
            claimed = True
            given = answer()
            if not 200 <= given.status_code < 300:
                transaction.set_rollback(True)  # not kept: nothing was made, a retry tries again
                return given
            record.status_code, record.response_body = given.status_code, given.body
            record.save(update_fields=["status_code", "response_body"])
            return given
    except IntegrityError:
        if claimed:
            raise  # not the key's: the request's own
    first = IdempotencyRecord.objects.get(user=user, key=key)
    if first.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            f"{HEADER} {key!r} was first sent with another request (method, path or body): "
            "use a new key for a new request",
            details={"key": key},
        )
    return Answer(first.status_code, first.response_body, replayed=True)
