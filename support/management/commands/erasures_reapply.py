"""`manage.py erasures_reapply [--log FILE]`: after restoring a database backup, erase again
the people of every erasure in the log (ERASURE_LOG_PATH), so none comes back."""

from django.core.management.base import BaseCommand

from support.gdpr import erasures_reapply


class Command(BaseCommand):
    help = "Apply again every GDPR erasure in the erasure log (after a database restore)."

    def add_arguments(self, parser):
        parser.add_argument("--log", help="The erasure log (default: ERASURE_LOG_PATH).")

    def handle(self, *args, log=None, **options):
        applied = erasures_reapply(path=log)
        self.stdout.write(f"{applied} erasure(s) applied.")
