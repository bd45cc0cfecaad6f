"""The editor's API over HTTP with the real worker: the preview is what Save makes, the text box takes the
same words as ``/edit``, and refusals are one sentence."""

from __future__ import annotations

import base64
import json

import pytest

from bot.web import editor
from generation.chibi import exports
from generation.spec import AvatarSpec
from tests.web.conftest import HttpUser, Site, actor, make_avatar, new_user

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_preview_is_what_save_makes(visitor: HttpUser, site: Site) -> None:
    user = new_user(site.emulator, "olga")
    parent = await make_avatar(site.studio, user, "short black hair, smile", seed=1234)
    await visitor.sign_in(user)
    token = await visitor.csrf()
    state = {
        "fields": {"hair_style": "twin_tails", "eye_color": "#3fb6b2"},
        "items": ["bunny_ears"],
        "text": "",
    }
    async with visitor.post(
        f"/api/avatars/{parent.id}/preview", json=state, headers={"X-CSRF-Token": token}
    ) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["changed"] and body["selections"]["hair_style"] == "twin_tails"
    assert body["selections"]["items"] == ["bunny_ears"]
    preview_png = base64.b64decode(body["image"].split(",", 1)[1])

    async with visitor.post(
        f"/a/{parent.id}/edit", data={"csrf": token, "state": json.dumps(state), "text": ""}
    ) as resp:
        assert resp.status == 303
        job = resp.headers["Location"]
    async with visitor.get(job) as resp:
        assert resp.status == 303
        child_id = resp.headers["Location"].split("/")[2].split("?")[0]
    child, _ = await site.studio.show(actor(user), child_id)
    assert child.parent == parent.id and child.seed == parent.seed
    saved = AvatarSpec.from_json(child.spec)
    assert exports.png(saved, editor.PREVIEW_SIZE) == preview_png  # the same picture, pixel for pixel


async def test_the_text_box_takes_the_same_words_as_edit(visitor: HttpUser, site: Site) -> None:
    user = new_user(site.emulator, "pia")
    parent = await make_avatar(site.studio, user, "red bob, smile", seed=77)
    await visitor.sign_in(user)
    token = await visitor.csrf()
    headers = {"X-CSRF-Token": token}
    async with visitor.post(
        f"/api/avatars/{parent.id}/preview", json={"text": "加皇冠，眨眼"}, headers=headers
    ) as resp:
        body = await resp.json()
    assert resp.status == 200 and "crown" in body["selections"]["items"]
    assert body["selections"]["expression"] == "wink"
    async with visitor.post(
        f"/api/avatars/{parent.id}/preview", json={"text": "asdfgh qwerty"}, headers=headers
    ) as resp:
        assert resp.status == 400
        assert "could be understood" in (await resp.json())["error"]
    # Save with nothing to change is refused with a sentence, and nothing is queued
    editor_url = f"{site.url}/a/{parent.id}/edit"
    async with visitor.post(
        f"/a/{parent.id}/edit", data={"csrf": token, "state": "{}"}, headers={"Referer": editor_url}
    ) as resp:
        page = await resp.text()
        assert resp.status == 400 and "nothing to change" in page
        assert f'href="/a/{parent.id}/edit" data-test="back"' in page  # a way back to the editor
