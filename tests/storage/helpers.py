"""Small helpers shared by the storage tests."""

from __future__ import annotations

from typing import Any

from storage import Avatar, Storage, User


def image(n: int) -> bytes:
    """Distinct, deterministic bytes standing in for a PNG (the blob store does not decode images)."""
    return b"\x89PNG\r\n\x1a\n" + f"test image {n}".encode() * 8


async def make_avatar(storage: Storage, owner: User | int, n: int = 0, **overrides: Any) -> Avatar:
    fields: dict[str, Any] = {
        "kind": "prompt",
        "seed": 1000 + n,
        "engine": "chibi",
        "width": 512,
        "height": 512,
        "spec": {"hair": "bob", "n": n},
        "prompt": f"cat ears number {n}",
    }
    fields.update(overrides)
    return await storage.create_avatar(owner, image(n), **fields)
