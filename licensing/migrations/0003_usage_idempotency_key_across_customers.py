# An idempotency key names one usage report whichever customer it is for, so that a key
# reused for another customer is refused (409) instead of recorded twice.

from django.db import migrations, models
from django.db.models import Count


def refuse_shared_keys(apps, schema_editor):
    UsageEvent = apps.get_model("licensing", "UsageEvent")
    shared = (
        UsageEvent.objects.values("idempotency_key")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("idempotency_key", flat=True)[:5]
    )
    if shared:
        raise RuntimeError(
            "Usage events of several customers share idempotency keys "
            f"(e.g. {list(shared)!r}); give them distinct keys before migrating."
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("licensing", "0002_plan_stripe_price_id"),
    ]

    operations = [
        migrations.RunPython(refuse_shared_keys, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="usageevent",
            name="licensing_usage_idempotency",
        ),
        migrations.AddConstraint(
            model_name="usageevent",
            constraint=models.UniqueConstraint(
                fields=("idempotency_key",), name="licensing_usage_idempotency_key"
            ),
        ),
    ]
