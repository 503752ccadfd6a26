"""The suite builds its tables from the models (--no-migrations hides the migrations from
this process), so a separate process checks the migrations themselves: one line of them
per app, and none missing for the models."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_migrations_are_complete_and_have_no_conflict():
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout
