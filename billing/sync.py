"""One sync of a Stripe object at a time, without a database transaction held across the
Stripe call: the claim is a row updated in autocommit, the fetch happens after it is taken,
and a sync asked for meanwhile makes the holder fetch once more. So overlapping webhooks,
return pages and the reconcile can never write an older snapshot over a newer one."""

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from .models import StripeObjectSync

R = TypeVar("R")

# Longer than the slowest fetch and apply (the gateway's timeouts bound the fetch): a
# worker that died holding a claim gives it up after this.
CLAIM_LEASE = timedelta(seconds=120)
# A holder asked to go again this many times in a row leaves the rest to the next sync.
MAX_RUNS = 5


def _row(stripe_id: str) -> None:
    if StripeObjectSync.objects.filter(pk=stripe_id).exists():
        return
    try:
        with transaction.atomic():
            StripeObjectSync.objects.create(stripe_id=stripe_id)
    except IntegrityError:  # created by a concurrent sync just now
        pass


def _claim(stripe_id: str, token: str) -> bool:
    now = timezone.now()
    return bool(
        StripeObjectSync.objects.filter(pk=stripe_id)
        .filter(Q(claimed_by="") | Q(claimed_until__lt=now))
        .update(claimed_by=token, claimed_until=now + CLAIM_LEASE, pending=False)
    )


def object_sync(*, stripe_id: str, run: Callable[[], R]) -> tuple[bool, R | None]:
    """Run `run` (fetch the object from Stripe, then apply it) as the only sync of
    `stripe_id`. Returns (True, result) when this call ran it; (False, None) when another
    sync was running: it has been asked to go again, and will see what we would have."""
    _row(stripe_id)
    rows = StripeObjectSync.objects.filter(pk=stripe_id)
    rows.update(pending=True)
    token = uuid.uuid4().hex
    if not _claim(stripe_id, token):
        return False, None
    mine = rows.filter(claimed_by=token)
    try:
        for _ in range(MAX_RUNS):
            result = run()
            mine.update(runs=F("runs") + 1, synced_at=timezone.now())
            # Give the claim back unless a sync was asked for while this one ran.
            if mine.filter(pending=False).update(claimed_by="", claimed_until=None):
                return True, result
            mine.update(pending=False)
        return True, result
    finally:
        mine.update(claimed_by="", claimed_until=None)
