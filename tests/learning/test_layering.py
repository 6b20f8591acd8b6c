"""`learning/` imports neither rl-games nor the tasks: the rl-games adapter is `rlgames.py`."""

import ast
from pathlib import Path

import isaacgymenvs_ddiffpg.learning

LEARNING = Path(isaacgymenvs_ddiffpg.learning.__file__).parent
FORBIDDEN = ("rl_games", "isaacgymenvs_ddiffpg.tasks")


def imported_modules(source: str, package: str) -> set[str]:
    """Every module the `import` and `from ... import` statements of `source` name, relative
    ones resolved against `package` (the dotted package the source lies in)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[: len(parts) - node.level + 1] if node.level else []
            names.add(".".join([*base, *([node.module] if node.module else [])]))
    return names


def test_relative_imports_are_resolved() -> None:
    source = "import rl_games.common\nfrom ..tasks import make_task\nfrom . import core\n"
    found = imported_modules(source, "isaacgymenvs_ddiffpg.learning")
    assert found == {
        "rl_games.common",
        "isaacgymenvs_ddiffpg.tasks",
        "isaacgymenvs_ddiffpg.learning",
    }


def test_learning_imports_neither_rl_games_nor_the_tasks() -> None:
    modules = sorted(LEARNING.rglob("*.py"))
    assert len(modules) > 20
    offending = set()
    for path in modules:
        package = ".".join(["isaacgymenvs_ddiffpg", *path.relative_to(LEARNING.parent).parts[:-1]])
        for name in imported_modules(path.read_text(), package):
            if any(name == root or name.startswith(root + ".") for root in FORBIDDEN):
                offending.add(f"{path.relative_to(LEARNING)}: {name}")
    assert not offending, f"learning/ should not import these: {sorted(offending)}"
