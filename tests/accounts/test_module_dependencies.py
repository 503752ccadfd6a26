"""Inside accounts, modules import each other one way: views -> services -> (models, tasks),
tasks -> notifications, and notifications imports neither services nor tasks. Imports inside
functions count too: they are how cycles hide."""

import ast
from pathlib import Path

import accounts

PACKAGE = Path(accounts.__file__).parent


def imports_of(module: str) -> set[str]:
    """The accounts modules `module` imports, anywhere in its file."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                names = [node.module] if node.module else [a.name for a in node.names]
            elif node.module and node.module.startswith("accounts."):
                names = [node.module.removeprefix("accounts.")]
            elif node.module == "accounts":
                names = [a.name for a in node.names]
            else:
                continue
        elif isinstance(node, ast.Import):
            names = [
                a.name.removeprefix("accounts.")
                for a in node.names
                if a.name.startswith("accounts.")
            ]
        else:
            continue
        found.update(name.split(".")[0] for name in names)
    return found & MODULES


MODULES = {path.stem for path in PACKAGE.glob("*.py")}


def test_notifications_import_neither_services_nor_tasks():
    assert not imports_of("notifications") & {"services", "tasks", "views"}


def test_tasks_send_through_notifications_and_services_queue_tasks():
    assert "notifications" in imports_of("tasks")
    assert not imports_of("tasks") & {"services", "views"}
    assert "tasks" in imports_of("services")
    assert "views" not in imports_of("services")


def test_no_module_of_accounts_imports_one_that_imports_it_back():
    graph = {module: imports_of(module) for module in MODULES}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for module in graph[start]:
            if module == target:
                return True
            if module not in seen:
                seen.add(module)
                if reaches(module, target, seen):
                    return True
        return False

    cycles = sorted(module for module in MODULES if reaches(module, module, set()))
    assert cycles == []
