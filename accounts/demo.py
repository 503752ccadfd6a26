"""The demo logins `make run` creates (a local demo only; never seeded in production)."""

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-portal-2026"  # noqa: S105 - printed by make run on purpose
SUPPORT_EMAIL = "support@example.com"
