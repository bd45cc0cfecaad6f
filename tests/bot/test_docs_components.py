"""docs/bot.md shows the controls under a grid and a single result as text; they must be the real ones."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.render import components_text
from bot.studio import AvatarView
from bot.views.results import result_view

DOC = Path(__file__).resolve().parents[2] / "docs" / "bot.md"


def fake(n: int) -> AvatarView:
    return AvatarView(
        id=f"id{n}".ljust(16, "x"),
        owner="discord:1",
        kind="prompt",
        prompt="cat ears",
        spec={},
        seed=n,
        engine="chibi",
        model=None,
        parent=None,
        width=512,
        height=512,
        favourite=False,
        created=datetime.now(UTC),
        blob_key="-",
    )


def block(marker: str) -> str:
    found = re.search(rf"<!-- {marker} -->\n```\n(.*?)\n```", DOC.read_text(), re.S)
    assert found, f"docs/bot.md has no {marker} block"
    return found.group(1)


@pytest.mark.asyncio
async def test_docs_show_the_real_grid_and_single_controls() -> None:
    grid = result_view([fake(n) for n in range(4)], "en")  # a View needs a running loop
    assert components_text(grid) == block("grid-components")
    assert components_text(result_view([fake(0)], "en")) == block("single-components")
    assert len(grid.children) == 14 and max(c._rendered_row or 0 for c in grid.children) < 5
