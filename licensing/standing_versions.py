"""`Customer.standing_version`: a value the database gives a customer's row anew whenever
anything check-access's standing is read from changes (the customer's trial end and
suspension, their plan row, the code of that plan, whether they have a stop spend cap).

Triggers set it, so every writer is covered: the ORM's saves and `update()`, bulk inserts,
raw SQL, a shell, another instance. A new value is never an old one come back (a
sequence on PostgreSQL, a random 64-bit number on SQLite), so a value read inside a
transaction that later rolls back never matches again, and a stale model instance saved
over the row cannot bring back the value its standing was remembered under: a write of the
column itself gets a new value too.

check-access remembers each customer's standing beside the value it was read at
(`licensing.entitlements`) and, in the one query it then needs, reads the current value
beside the usage total: the same value means the same standing.

A change to a customer's plan row or spend caps thereby writes the customer's row as well;
their writers lock the customer's row first (the per-customer lock every writer takes), so
the locks are always taken in the same order.

Installed after every `migrate` (the post_migrate signal), so databases built from the
models alone (the test suite, the benchmark's quick schema) have them too; installing is
idempotent.
"""

# ruff: noqa: S608 - only our own table, column and sequence names are formatted in

from django.db import connections

CUSTOMER = "accounts_customer"
SEQUENCE = "accounts_customer_standing_version_seq"
# The columns of each table the standing is read from.
CUSTOMER_COLUMNS = ("trial_ends_at", "suspended_at")
CUSTOMER_PLAN = "licensing_customerplan"
CUSTOMER_PLAN_COLUMNS = (
    "customer_id", "plan_id", "status", "current_period_start", "current_period_end",
    "past_due_since",
)  # fmt: skip
SPEND_CAP = "licensing_spendcap"
SPEND_CAP_COLUMNS = ("customer_id", "mode")
PLAN = "licensing_plan"


def _changed(columns, distinct: str = "IS DISTINCT FROM") -> str:
    return " OR ".join(f"OLD.{c} {distinct} NEW.{c}" for c in columns)


def _postgresql() -> list[str]:
    bump = f"UPDATE {CUSTOMER} SET standing_version = nextval('{SEQUENCE}')"
    return [
        f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}",
        # The customer's own row: a new value on insert, when its standing columns change,
        # and when anything but these triggers writes the column.
        f"""CREATE OR REPLACE FUNCTION bp_standing_version_own() RETURNS trigger AS $$
        BEGIN
          IF TG_OP = 'INSERT' THEN
            NEW.standing_version := nextval('{SEQUENCE}');
          ELSIF {_changed([*CUSTOMER_COLUMNS, "standing_version"])} THEN
            NEW.standing_version := nextval('{SEQUENCE}');
          END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql""",
        f"DROP TRIGGER IF EXISTS bp_standing_version_own ON {CUSTOMER}",
        f"""CREATE TRIGGER bp_standing_version_own BEFORE INSERT OR UPDATE ON {CUSTOMER}
        FOR EACH ROW EXECUTE FUNCTION bp_standing_version_own()""",
        # A row that names a customer (their plan, a spend cap): the customer it names,
        # before and after. The UPDATE above writes the column, so the trigger on the
        # customer's row gives it the new value.
        f"""CREATE OR REPLACE FUNCTION bp_standing_version_of_customer() RETURNS trigger AS $$
        BEGIN
          IF TG_OP = 'INSERT' THEN
            {bump} WHERE customer_id = NEW.customer_id;
          ELSIF TG_OP = 'DELETE' THEN
            {bump} WHERE customer_id = OLD.customer_id;
          ELSE
            {bump} WHERE customer_id IN (OLD.customer_id, NEW.customer_id);
          END IF;
          RETURN NULL;
        END $$ LANGUAGE plpgsql""",
        *_postgresql_row_triggers(CUSTOMER_PLAN, CUSTOMER_PLAN_COLUMNS),
        *_postgresql_row_triggers(SPEND_CAP, SPEND_CAP_COLUMNS),
        # A plan's code: every customer on the plan.
        f"""CREATE OR REPLACE FUNCTION bp_standing_version_of_plan() RETURNS trigger AS $$
        BEGIN
          {bump} WHERE customer_id IN
            (SELECT customer_id FROM {CUSTOMER_PLAN} WHERE plan_id = NEW.id);
          RETURN NULL;
        END $$ LANGUAGE plpgsql""",
        f"DROP TRIGGER IF EXISTS bp_standing_version ON {PLAN}",
        f"""CREATE TRIGGER bp_standing_version AFTER UPDATE ON {PLAN} FOR EACH ROW
        WHEN (OLD.code IS DISTINCT FROM NEW.code)
        EXECUTE FUNCTION bp_standing_version_of_plan()""",
    ]


def _postgresql_row_triggers(table: str, columns) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS bp_standing_version ON {table}",
        f"DROP TRIGGER IF EXISTS bp_standing_version_update ON {table}",
        f"""CREATE TRIGGER bp_standing_version AFTER INSERT OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION bp_standing_version_of_customer()""",
        f"""CREATE TRIGGER bp_standing_version_update AFTER UPDATE ON {table} FOR EACH ROW
        WHEN ({_changed(columns)}) EXECUTE FUNCTION bp_standing_version_of_customer()""",
    ]


def _sqlite() -> list[str]:
    # SQLite cannot assign NEW in a trigger: its triggers update the row after the write
    # (recursive triggers are off, so that update fires nothing more).
    bump = f"UPDATE {CUSTOMER} SET standing_version = random()"
    own_changed = _changed([*CUSTOMER_COLUMNS, "standing_version"], "IS NOT")
    statements = []
    for table, columns in ((CUSTOMER_PLAN, CUSTOMER_PLAN_COLUMNS), (SPEND_CAP, SPEND_CAP_COLUMNS)):
        statements += [
            f"DROP TRIGGER IF EXISTS bp_standing_version_insert_{table}",
            f"DROP TRIGGER IF EXISTS bp_standing_version_delete_{table}",
            f"DROP TRIGGER IF EXISTS bp_standing_version_update_{table}",
            f"""CREATE TRIGGER bp_standing_version_insert_{table} AFTER INSERT ON {table}
            BEGIN {bump} WHERE customer_id = NEW.customer_id; END""",
            f"""CREATE TRIGGER bp_standing_version_delete_{table} AFTER DELETE ON {table}
            BEGIN {bump} WHERE customer_id = OLD.customer_id; END""",
            f"""CREATE TRIGGER bp_standing_version_update_{table} AFTER UPDATE ON {table}
            WHEN {_changed(columns, "IS NOT")}
            BEGIN {bump} WHERE customer_id IN (OLD.customer_id, NEW.customer_id); END""",
        ]
    return [
        *statements,
        "DROP TRIGGER IF EXISTS bp_standing_version_insert",
        "DROP TRIGGER IF EXISTS bp_standing_version_update",
        "DROP TRIGGER IF EXISTS bp_standing_version_plan",
        f"""CREATE TRIGGER bp_standing_version_insert AFTER INSERT ON {CUSTOMER}
        BEGIN {bump} WHERE customer_id = NEW.customer_id; END""",
        f"""CREATE TRIGGER bp_standing_version_update AFTER UPDATE ON {CUSTOMER}
        WHEN {own_changed} BEGIN {bump} WHERE customer_id = NEW.customer_id; END""",
        f"""CREATE TRIGGER bp_standing_version_plan AFTER UPDATE ON {PLAN}
        WHEN OLD.code IS NOT NEW.code
        BEGIN {bump} WHERE customer_id IN
          (SELECT customer_id FROM {CUSTOMER_PLAN} WHERE plan_id = NEW.id); END""",
    ]


STATEMENTS = {"postgresql": _postgresql, "sqlite": _sqlite}


def standing_versions_install(*, using: str = "default", **_signal) -> None:
    """Create or replace the triggers (post_migrate calls it after every migrate)."""
    db = connections[using]
    statements = STATEMENTS.get(db.vendor)
    if statements is None:
        return
    with db.cursor() as cursor:
        for statement in statements():
            cursor.execute(statement)
