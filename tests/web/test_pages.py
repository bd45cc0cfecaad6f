"""The gallery, the avatar page and its family tree, downloads, favourites, forget-me and languages, over HTTP."""

from __future__ import annotations

import html
import io
import re
import zipfile

import aiohttp
import pytest
from PIL import Image

from bot.web.gallery import PAGE_SIZE
from storage import avatars, jobs, users
from tests.web.conftest import HttpUser, Site, actor, make_avatar, new_user

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_gallery_pages_newest_first_and_api_matches(visitor: HttpUser, site: Site) -> None:
    user = new_user(site.emulator, "quinn")
    made = [await make_avatar(site.studio, user, f"short hair number {i}") for i in range(PAGE_SIZE + 2)]
    await visitor.sign_in(user)
    async with visitor.get("/api/avatars") as resp:
        first = await resp.json()
    assert first["total"] == PAGE_SIZE + 2 and first["pages"] == 2
    assert [a["id"] for a in first["avatars"]] == [a.id for a in reversed(made)][:PAGE_SIZE]
    assert first["avatars"][0]["thumb"] == f"/a/{made[-1].id}/thumb.png"
    async with visitor.get(f"/api/avatars?page=2&snap={first['snapshot']}") as resp:
        second = await resp.json()
    assert [a["id"] for a in second["avatars"]] == [made[1].id, made[0].id]
    async with visitor.get("/?page=2") as resp:
        page = await resp.text()
    assert resp.status == 200 and made[0].id in page and made[-1].id not in page
    for bad, says in (
        ("/?page=9", "page 9 does not exist"),
        ("/?page=x", "is not a number"),
        (f"/?page={10**30}", "does not exist"),
        ("/?page=2&snap=-4", "page link is broken"),
    ):
        async with visitor.get(bad) as resp:
            assert resp.status == 400 and says in await resp.text()


async def test_avatar_page_tree_skips_deleted_and_shows_downloads(visitor: HttpUser, site: Site) -> None:
    user = new_user(site.emulator, "rosa")
    root = await make_avatar(site.studio, user, "brown bob, smile")
    studio, who = site.studio, actor(user)
    middle = (await studio.finish(await studio.submit_edit(who, root.id, add=["crown"]))).avatars[0]
    leaf = (await studio.finish(await studio.submit_edit(who, middle.id, expression="wink"))).avatars[0]
    vary = (await studio.finish(await studio.submit_variations(who, root.id))).avatars[0]
    await studio.delete(who, middle.id)
    await visitor.sign_in(user)
    async with visitor.get(f"/api/avatars/{leaf.id}") as resp:
        data = await resp.json()
    assert data["lineage"] == [root.id, leaf.id]
    (tree,) = data["tree"]
    assert tree["id"] == root.id
    assert [(c["id"], c["current"]) for c in tree["children"]] == [(leaf.id, True), (vary.id, False)]
    async with visitor.get(f"/a/{leaf.id}") as resp:
        page = await resp.text()
    assert middle.id not in page
    for fmt in ("png?size=128", "png?size=1024", "transparent", "circle", "svg", "gif", "apng", "stickers"):
        assert f"/a/{leaf.id}/download/{fmt}" in page


async def test_downloads_are_real_files_of_the_asked_size(visitor: HttpUser, site: Site) -> None:
    user = new_user(site.emulator, "sara")
    avatar = await make_avatar(site.studio, user, "green braids, scarf")
    await visitor.sign_in(user)
    for size in (128, 512, 1024):
        async with visitor.get(f"/a/{avatar.id}/download/png?size={size}") as resp:
            with Image.open(io.BytesIO(await resp.read())) as im:
                assert im.format == "PNG" and im.size == (size, size)
    async with visitor.get(f"/a/{avatar.id}/download/gif") as resp:
        assert resp.headers["Content-Type"] == "image/gif"
        with Image.open(io.BytesIO(await resp.read())) as im:
            assert im.n_frames > 1
    async with visitor.get(f"/a/{avatar.id}/download/stickers") as resp:
        assert resp.headers["Content-Disposition"] == f'attachment; filename="{avatar.id}-stickers.zip"'
        names = zipfile.ZipFile(io.BytesIO(await resp.read())).namelist()
        assert any(n.endswith(".png") for n in names)
    async with visitor.get(f"/a/{avatar.id}/download/png?size=5000") as resp:
        assert resp.status == 400 and "size 5000 is out of range" in await resp.text()
    async with visitor.get(f"/a/{avatar.id}/download/bmp") as resp:
        assert resp.status == 400 and "there is no 'bmp' download" in html.unescape(await resp.text())


async def test_forget_me_needs_the_box_ticked_then_removes_everything(visitor: HttpUser, site: Site) -> None:
    user = new_user(site.emulator, "tess")
    a = await make_avatar(site.studio, user, "white buzz cut")
    await make_avatar(site.studio, user, "red afro")
    await visitor.sign_in(user)
    token = await visitor.csrf()
    async with visitor.get("/forget") as resp:
        assert "You have 2 avatars." in await resp.text()
    async with visitor.post("/forget", data={"csrf": token}) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/forget"
    async with visitor.get("/api/avatars") as resp:
        assert (await resp.json())["total"] == 2  # nothing deleted without the tick
    async with visitor.post("/forget", data={"csrf": token, "confirm": "yes"}) as resp:
        assert resp.status == 303
    async with visitor.get("/") as resp:
        text = await resp.text()
    assert "2 avatars" in text and "were deleted" in text and 'data-test="sign-in"' in text  # signed out
    history = await site.studio.history(actor(user))
    assert history.total == 0
    async with visitor.get(f"/a/{a.id}") as resp:
        assert resp.status == 303 and resp.headers["Location"].startswith("/?next=")  # no session any more


async def test_language_from_the_browser_discord_or_the_switch(visitor: HttpUser, site: Site) -> None:
    async with visitor.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}) as resp:
        assert '<html lang="zh-CN">' in await resp.text() and "使用 Discord 登录" in await resp.text()
    async with visitor.get("/", headers={"Accept-Language": "fr-FR,en;q=0.3"}) as resp:
        assert "Sign in with Discord" in await resp.text()
    user = new_user(site.emulator, "uma")
    site.emulator.oauth.set_locale(user, "zh-CN")
    await visitor.sign_in(user)
    async with visitor.get("/", headers={"Accept-Language": "en-US"}) as resp:
        assert "我的头像" in await resp.text()  # Discord's locale wins over the browser's
    async with visitor.get("/lang/en?next=/forget") as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/forget"
    async with visitor.get("/") as resp:
        assert "My avatars" in await resp.text()  # the visitor's own choice wins over both
    async with visitor.get("/lang/en?next=//evil.example/") as resp:
        assert resp.headers["Location"] == "/"  # never sends anyone off-site
    async with visitor.get("/lang/fr") as resp:
        assert resp.status == 404


async def test_favourite_form_without_script(visitor: HttpUser, site: Site) -> None:
    user = new_user(site.emulator, "vera")
    avatar = await make_avatar(site.studio, user, "plum ponytail")
    await visitor.sign_in(user)
    token = await visitor.csrf()
    async with visitor.post(
        f"/a/{avatar.id}/favourite", data={"csrf": token, "on": "1", "next": "/?fav=1"}
    ) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/?fav=1"
    async with visitor.get("/?fav=1") as resp:
        page = await resp.text()
    assert avatar.id in page and re.search(r'class="fav is-on"', page)


async def test_deleting_on_the_web_removes_the_bots_discord_messages_too(
    visitor: HttpUser, site: Site
) -> None:
    user = new_user(site.emulator, "wynn")
    avatar = await make_avatar(site.studio, user, "sky blue long wavy hair")
    channel = site.emulator.guild.channels[0]
    async with aiohttp.ClientSession() as http:  # the bot once posted the result in a channel
        async with http.post(
            f"{site.emulator.api_base}/channels/{channel.id}/messages",
            json={"content": f"Here you go! {avatar.id}"},
            headers={"Authorization": f"Bot {site.emulator.token}"},
        ) as resp:
            message_id = int((await resp.json())["id"])
    async with site.studio.storage.transaction() as s:
        owner = await users.get_user(s, discord_id=user.id)
        assert owner is not None
        row = await avatars.get_avatar(s, avatar.id, owner)
        assert row.job_id is not None
        await jobs.add_messages(s, [row.job_id], [[channel.id, message_id]])
    await visitor.sign_in(user)
    async with visitor.post(f"/a/{avatar.id}/delete", data={"csrf": await visitor.csrf()}) as resp:
        assert resp.status == 303
    async with visitor.get("/") as resp:
        assert "1 Discord message(s) that showed it were removed too." in await resp.text()
    assert message_id not in site.emulator.messages
