"""The issue's journeys in real Chromium: sign in with (emulated) Discord and see only my avatars; change the
hair colour in the picker, watch the preview change, save, and find the child under its parent; download
the SVG, delete, sign out. The page fixture fails a test on any script error or CSP violation."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from bot.studio import Actor
from generation import catalog
from tests.web.conftest import Site, actor, browser_sign_in, make_avatar, new_user

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture skips (or fails under CHIBIFY_REQUIRE_BROWSER=1) with the reason
    expect = None

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def grid_ids(page: Any) -> list[str]:
    return [await c.get_attribute("data-id") for c in await page.locator("#grid .avatar-card").all()]


async def test_sign_in_with_discord_and_see_only_my_avatars(page: Any, site: Site) -> None:
    alice, bob = new_user(site.emulator, "alice"), new_user(site.emulator, "bob")
    mine = [
        await make_avatar(site.studio, alice, p) for p in ("pink twin tails, cat ears", "blue bob, crown")
    ]
    theirs = await make_avatar(site.studio, bob, "green spiky hair, glasses")
    asked_before = len(site.emulator.oauth.authorize_requests)

    await browser_sign_in(page, site, alice)

    asked = site.emulator.oauth.authorize_requests[asked_before]
    assert asked["scope"] == "identify" and asked["response_type"] == "code"
    assert asked["client_id"] == site.config.client_id and len(asked["state"]) >= 20
    assert asked["redirect_uri"] == f"{site.url}/callback"
    assert sorted(await grid_ids(page)) == sorted(a.id for a in mine)
    assert theirs.id not in await page.content()
    await expect(page.locator(".who-name")).to_have_text("Alice")
    # the token was used once for /users/@me and revoked at once: nothing kept
    assert site.emulator.oauth.live_tokens() == []
    # the page's own script reads the same list as JSON
    api = await page.request.get(f"{site.url}/api/avatars")
    assert api.status == 200
    assert sorted(a["id"] for a in (await api.json())["avatars"]) == sorted(a.id for a in mine)


async def test_search_and_favourites_filter_live(page: Any, site: Site) -> None:
    carol = new_user(site.emulator, "carol")
    crown = await make_avatar(site.studio, carol, "silver hair with a crown")
    await make_avatar(site.studio, carol, "red ponytail, smile")
    await browser_sign_in(page, site, carol)
    await page.fill("#search-q", "皇冠")  # the item's Chinese name finds the crown
    await expect(page.locator("#grid .avatar-card")).to_have_count(1)
    assert await grid_ids(page) == [crown.id]
    await page.fill("#search-q", "")
    await expect(page.locator("#grid .avatar-card")).to_have_count(2)
    await page.locator(f"#grid .avatar-card[data-id='{crown.id}'] .fav").click()
    await expect(page.locator(f"#grid .avatar-card[data-id='{crown.id}'] .fav")).to_have_attribute(
        "aria-pressed", "true"
    )
    await page.locator(".toggle span").click()
    await expect(page.locator("#grid .avatar-card")).to_have_count(1)
    assert await grid_ids(page) == [crown.id]


async def test_pick_hair_colour_preview_save_child_under_parent(
    page: Any, site: Site, tmp_path: Path
) -> None:
    dana = new_user(site.emulator, "dana")
    parent = await make_avatar(site.studio, dana, "long wavy brown hair, round glasses, smile")
    await browser_sign_in(page, site, dana)
    await page.goto(f"{site.url}/a/{parent.id}")
    await page.click("[data-test=edit]")
    await page.wait_for_url(f"{site.url}/a/{parent.id}/edit")
    preview = page.locator("#preview")
    before = await preview.get_attribute("src")

    pink = catalog.get("color", "pink").hex
    await page.click(f"button.swatch[data-field=hair_color][data-value='{pink}']")
    await expect(preview).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    first = await preview.get_attribute("src")
    assert first != before
    await expect(page.locator("#changes")).to_contain_text("hair colour")
    await expect(page.locator(f"button.swatch[data-value='{pink}']").first).to_have_attribute(
        "aria-pressed", "true"
    )

    # undo goes back to the avatar as it is; picking again draws the same preview (same seed, same spec)
    await page.click("[data-test=undo]")
    await expect(preview).to_have_attribute("src", before or "")
    await page.click(f"button.swatch[data-field=hair_color][data-value='{pink}']")
    await expect(preview).to_have_attribute("src", first or "")
    await page.screenshot(path=str(tmp_path / "editor.png"))

    await page.click("[data-test=save]")
    await page.wait_for_url(re.compile(r"/a/[^/?]+\?saved=1$"))
    child_id = page.url.rsplit("/", 1)[1].split("?")[0]
    assert child_id != parent.id
    await expect(page.locator("[data-test=flash]")).to_be_visible()
    # in the family tree the child hangs under its parent
    nested = page.locator(f"#lineage li:has(> a[data-id='{parent.id}']) > ul a[data-id='{child_id}']")
    await expect(nested).to_have_count(1)
    await expect(page.locator(f"#lineage a[data-id='{child_id}']")).to_have_attribute("aria-current", "page")

    child, lineage = await site.studio.show(actor(dana), child_id)
    assert child.parent == parent.id and [a.id for a in lineage] == [parent.id, child_id]
    assert child.seed == parent.seed and child.kind == "edit"
    assert child.spec["hair"]["color"] == pink
    # what was previewed is what was saved: the saved picture at 256 px is the preview
    assert child.spec == {**parent.spec, "hair": {**parent.spec["hair"], "color": pink, "highlight": None}}
    await page.screenshot(path=str(tmp_path / "avatar.png"), full_page=True)


async def test_download_svg_then_delete_then_sign_out(page: Any, site: Site) -> None:
    erin = new_user(site.emulator, "erin")
    keep = await make_avatar(site.studio, erin, "purple bun, star background")
    gone = await make_avatar(site.studio, erin, "mint short hair, bow")
    await browser_sign_in(page, site, erin)
    await page.goto(f"{site.url}/a/{gone.id}")

    async with page.expect_download() as info:
        await page.get_by_role("link", name=re.compile("SVG")).click()
    download = await info.value
    assert download.suggested_filename == f"{gone.id}.svg"
    svg = await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8")
    assert svg.lstrip().startswith(("<svg", "<?xml")) and "</svg>" in svg

    await page.click("[data-test=delete-open]")
    await page.click("[data-test=delete]")
    await page.wait_for_url(site.url + "/")
    await expect(page.locator("[data-test=flash]")).to_contain_text(gone.id)
    assert await grid_ids(page) == [keep.id]
    missing = await page.goto(f"{site.url}/a/{gone.id}")
    assert missing is not None and missing.status == 404

    await page.goto(site.url + "/")
    await page.click("[data-test=sign-out]")
    await page.wait_for_url(site.url + "/")
    await expect(page.locator("[data-test=sign-in]")).to_be_visible()
    api = await page.request.get(f"{site.url}/api/avatars")
    assert api.status == 401


async def test_bob_cannot_reach_alices_avatar_by_url(page: Any, site: Site) -> None:
    alice, bob = new_user(site.emulator, "alice"), new_user(site.emulator, "bob")
    hers = await make_avatar(site.studio, alice, "orange braids, freckles")
    await browser_sign_in(page, site, bob)
    for path in ("", "/edit", "/image.png", "/thumb.png", "/download/svg", "/download/png?size=1024"):
        resp = await page.goto(f"{site.url}/a/{hers.id}{path}")
        assert resp is not None and resp.status == 404, path
    await expect(page.locator("[data-test=error]")).to_be_visible()
    # a forged delete form posted from Bob's own, valid session
    csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    resp = await page.request.post(f"{site.url}/a/{hers.id}/delete", form={"csrf": csrf or ""})
    assert resp.status == 404
    view, _ = await site.studio.show(Actor(discord_id=alice.id), hers.id)
    assert view.id == hers.id


async def test_phone_width_gallery_and_editor_fit(browser: Any, site: Site, tmp_path: Path) -> None:
    fay = new_user(site.emulator, "fay")
    first = await make_avatar(site.studio, fay, "black afro, headphones, hoodie")
    await make_avatar(site.studio, fay, "white long straight hair, halo")
    context = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    page = await context.new_page()
    try:
        await browser_sign_in(page, site, fay)
        for path in ("/", f"/a/{first.id}", f"/a/{first.id}/edit"):
            await page.goto(site.url + path)
            width = await page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], (path, width)
        cards = page.locator("#grid .avatar-card")
        await page.goto(site.url + "/")
        boxes = [await cards.nth(i).bounding_box() for i in range(2)]
        assert boxes[0] and boxes[1] and abs(boxes[0]["y"] - boxes[1]["y"]) < 2  # two columns side by side
        await page.screenshot(path=str(tmp_path / "gallery-phone.png"))
    finally:
        await context.close()
