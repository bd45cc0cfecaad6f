"""The README's two commands and CI stay in step; the layout keeps its import rules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.+?)\n```", text, re.S)


def test_readme_has_the_two_commands_and_ci_runs_the_test_one() -> None:
    commands = _readme_commands()
    assert len(commands) >= 2
    main_job, tests = commands[0], commands[1]
    assert "pip install torch==2.13.0" in main_job and "chibify avatar" in main_job
    test_part = tests.split(". .venv/bin/activate && ", 1)[1]
    assert test_part in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _imports(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_imports_flow_one_way() -> None:
    assert not _imports("generation") & {"bot", "storage", "discord"}
    assert not _imports("storage") & {"bot", "generation", "discord", "torch"}
