"""The pages and the JSON API. Handlers read the request, call the studio (owner checks are there: someone
else's avatar is a :class:`~bot.errors.NotFoundError`, shown as a 404) and render.

| route | what |
|---|---|
| ``GET /`` | the landing page, or the gallery when signed in (``q``, ``fav=1``, ``page``, ``snap``) |
| ``GET /login``, ``GET /callback`` | Discord OAuth2 (authorization code, scope identify, checked ``state``) |
| ``POST /logout`` | sign out (the session id is revoked) |
| ``GET /lang/{en,zh}`` | choose the language |
| ``GET /a/{id}`` | one avatar: picture, details, family tree, downloads, favourite, delete |
| ``GET /a/{id}/image.png``, ``/thumb.png`` | its picture, and a 256 px thumbnail |
| ``GET /a/{id}/download/{fmt}`` | png (``size`` 64-2048), transparent, circle, svg, gif, apng, stickers, original |
| ``POST /a/{id}/favourite``, ``/delete`` | favourite on/off; delete |
| ``GET /a/{id}/edit``, ``POST /a/{id}/edit`` | the editor; Save (a child avatar, same seed) -> ``/jobs/{token}`` |
| ``GET /jobs/{token}`` | the save's progress, then the new avatar |
| ``GET /forget``, ``POST /forget`` | delete everything about me, after a confirmation |
| ``GET /api/avatars``, ``/api/avatars/{id}`` | the gallery and one avatar as JSON (401 without a session) |
| ``POST /api/avatars/{id}/preview`` | the editor's live preview (rate limited) |
| ``GET /api/jobs/{token}`` | a save's progress as JSON |
| ``GET /parts/{category}/{id}.png``, ``/static/...`` | part thumbnails (the same for everyone), styles, scripts |
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.errors import BadInput, NotFoundError
from bot.studio import EXPORT_FORMATS, Actor, AvatarView
from bot.web import editor, i18n
from bot.web.app import (
    DOWNLOAD_CSP,
    HERE,
    LANG_COOKIE,
    actor_of,
    flash,
    json_response,
    lang_of,
    limit,
    local_path,
    redirect,
    render,
    require_actor,
    state_of,
)
from bot.web.discord import SignInFailed, delete_bot_messages
from bot.web.gallery import TreeNode, tree_size
from bot.web.session import session_of
from generation import catalog
from generation.chibi.exports import to_zip
from generation.spec import AvatarSpec, SpecError

routes = web.RouteTableDef()

OAUTH_STATE_MAX_AGE_S = 600
PNG_SIZES = (128, 512, 1024)
THUMB_PX = 256
_THUMB_CACHE_MAX = 512


def add_routes(app: web.Application) -> None:
    app.router.add_routes(routes)
    app.router.add_static("/static/", HERE / "static", append_version=False)


def _avatar_id(request: web.Request) -> str:
    avatar_id = request.match_info["id"]
    if not 1 <= len(avatar_id) <= 64 or not all(c.isalnum() or c in "-_" for c in avatar_id):
        raise NotFoundError("no such avatar.")
    return avatar_id


def _int(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise BadInput(f"{name} {value[:20]!r} is not a number.") from None


def _card(view: AvatarView) -> dict[str, Any]:
    data = view.to_json(f"/a/{view.id}/image.png")
    data["thumb"] = f"/a/{view.id}/thumb.png"
    data["url"] = f"/a/{view.id}"
    return data


# --- landing and gallery ---------------------------------------------------------------------------------


@routes.get("/")
async def home(request: web.Request) -> web.StreamResponse:
    actor = actor_of(request)
    if actor is None:
        next_path = local_path(request.query.get("next"), "")
        login = "/login?" + urlencode({"next": next_path}) if next_path else "/login"
        return render(request, "landing.html", page="landing", login=login)
    q = request.query
    view = await state_of(request).gallery.page(
        actor,
        page=_int(q.get("page"), "page", 1),
        favourites=q.get("fav") == "1",
        query=q.get("q", ""),
        snapshot=_int(q.get("snap"), "snap", 0) or None,
    )
    return render(request, "gallery.html", page="gallery", view=view)


@routes.get("/api/avatars")
async def api_avatars(request: web.Request) -> web.StreamResponse:
    actor = require_actor(request)
    q = request.query
    view = await state_of(request).gallery.page(
        actor,
        page=_int(q.get("page"), "page", 1),
        favourites=q.get("fav") == "1",
        query=q.get("q", ""),
        snapshot=_int(q.get("snap"), "snap", 0) or None,
    )
    return json_response(
        {
            "page": view.page,
            "pages": view.pages,
            "total": view.total,
            "snapshot": view.snapshot,
            "query": view.query,
            "favourites": view.favourites,
            "avatars": [_card(a) for a in view.items],
        }
    )


def _tree_json(nodes: list[TreeNode]) -> list[dict[str, Any]]:
    return [
        {"id": n.avatar.id, "kind": n.avatar.kind, "current": n.current, "children": _tree_json(n.children)}
        for n in nodes
    ]


@routes.get("/api/avatars/{id}")
async def api_avatar(request: web.Request) -> web.StreamResponse:
    actor = require_actor(request)
    avatar_id = _avatar_id(request)
    state = state_of(request)
    view, lineage = await state.studio.show(actor, avatar_id)
    tree = await state.gallery.tree(actor, avatar_id)
    data = _card(view)
    data["lineage"] = [a.id for a in lineage]
    data["tree"] = _tree_json(tree)
    return json_response(data)


# --- one avatar -------------------------------------------------------------------------------------------


@routes.get("/a/{id}")
async def avatar_page(request: web.Request) -> web.StreamResponse:
    actor = require_actor(request)
    avatar_id = _avatar_id(request)
    state = state_of(request)
    view, lineage = await state.studio.show(actor, avatar_id)
    tree = await state.gallery.tree(actor, avatar_id)
    lang = lang_of(request)
    if request.query.get("saved") == "1":
        flash(request, "ok", i18n.t("saved", lang))
    return render(
        request,
        "avatar.html",
        page="avatar",
        avatar=view,
        lineage=lineage,
        tree=tree,
        tree_size=tree_size(tree),
        downloads=_downloads(view, lang),
    )


def _downloads(view: AvatarView, lang: str) -> list[tuple[str, str]]:
    base = f"/a/{view.id}/download"
    if view.engine != "chibi":
        return [(f"{base}/original", i18n.t("dl_original", lang))]
    out = [(f"{base}/png?size={s}", i18n.t("dl_png", lang, size=s)) for s in PNG_SIZES]
    out += [(f"{base}/{fmt}", _format_label(fmt, lang)) for fmt in EXPORT_FORMATS if fmt != "png"]
    return out


def _format_label(fmt: str, lang: str) -> str:
    """The download's name in the page's language (a format added to the studio later shows its id)."""
    return i18n.t(f"dl_{fmt}", lang) if f"dl_{fmt}" in i18n.WEB else fmt.upper()


def _image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


@routes.get("/a/{id}/image.png")
async def avatar_image(request: web.Request) -> web.StreamResponse:
    actor = require_actor(request)
    view, data = await state_of(request).studio.image(actor, _avatar_id(request))
    return web.Response(
        body=data,
        content_type=_image_type(data),
        headers={"Cache-Control": "private, max-age=86400", "ETag": f'"{view.blob_key[:32]}"'},
    )


def _thumbnail(data: bytes) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.thumbnail((THUMB_PX, THUMB_PX), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        im.save(out, format="PNG", optimize=False, compress_level=6)
        return out.getvalue()


@routes.get("/a/{id}/thumb.png")
async def avatar_thumb(request: web.Request) -> web.StreamResponse:
    actor = require_actor(request)
    state = state_of(request)
    view, data = await state.studio.image(actor, _avatar_id(request))
    thumb = state.thumbs.get(view.blob_key)  # blobs are content-addressed: same key, same picture
    if thumb is None:
        thumb = await asyncio.to_thread(_thumbnail, data)
        if len(state.thumbs) >= _THUMB_CACHE_MAX:
            state.thumbs.pop(next(iter(state.thumbs)))
        state.thumbs[view.blob_key] = thumb
    return web.Response(
        body=thumb, content_type="image/png", headers={"Cache-Control": "private, max-age=86400"}
    )


_DOWNLOAD_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".gif": "image/gif",
    ".zip": "application/zip",
}


@routes.get("/a/{id}/download/{fmt}")
async def download(request: web.Request) -> web.StreamResponse:
    actor = require_actor(request)
    avatar_id = _avatar_id(request)
    fmt = request.match_info["fmt"]
    studio = state_of(request).studio
    if fmt == "original":
        view, data = await studio.image(actor, avatar_id)
        name = f"{view.id}.png"
    elif fmt in EXPORT_FORMATS:
        size = _int(request.query.get("size"), "size", 512)
        files = await studio.export(actor, avatar_id, fmt, size=size)
        if len(files) == 1 and fmt != "stickers":
            ((name, data),) = files.items()
        else:  # a set of files (the sticker pack...) comes as one zip
            data, name = await asyncio.to_thread(to_zip, files), f"{avatar_id}-{fmt}.zip"
    else:
        raise BadInput(
            f"there is no {fmt[:20]!r} download.", f"Choose one of: {', '.join(EXPORT_FORMATS)}, original."
        )
    kind = _DOWNLOAD_TYPES.get(name[name.rfind(".") :], "application/octet-stream")
    return web.Response(
        body=data,
        content_type=kind,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Security-Policy": DOWNLOAD_CSP,
            "Cache-Control": "private, no-store",
        },
    )


@routes.post("/a/{id}/favourite")
async def favourite(request: web.Request) -> web.StreamResponse:
    actor = require_actor(request)
    form = await request.post()
    on = str(form.get("on", "1")) == "1"
    view = await state_of(request).studio.favourite(actor, _avatar_id(request), on)
    if "application/json" in request.headers.get("Accept", ""):
        return json_response({"id": view.id, "favourite": view.favourite})
    return redirect(local_path(str(form.get("next") or ""), f"/a/{view.id}"))


@routes.post("/a/{id}/delete")
async def delete(request: web.Request) -> web.StreamResponse:
    actor = require_actor(request)
    state = state_of(request)
    removal = await state.studio.delete(actor, _avatar_id(request))
    lang = lang_of(request)
    text = i18n.t("deleted", lang, id=removal.avatar.id)
    if removal.messages and state.config.bot_token and state.http is not None:
        count = await delete_bot_messages(
            state.http,
            discord_url=state.config.discord_url,
            bot_token=state.config.bot_token,
            messages=removal.messages,
        )
        if count:
            text += i18n.t("deleted_messages", lang, count=count)
    flash(request, "ok", text)
    return redirect("/")


# --- the editor ------------------------------------------------------------------------------------------


def _picker(lang: str) -> list[dict[str, Any]]:
    """The tabs, each with its rows of options (id, label, and a thumbnail or a colour swatch)."""
    tabs = []
    for tab, names in editor.TABS:
        rows = []
        for name in names:
            if name == "items":
                by_slot: dict[str, list[catalog.Entry]] = {}
                for entry in catalog.ITEMS:
                    by_slot.setdefault(entry.slot or "", []).append(entry)
                for slot, entries in by_slot.items():
                    rows.append(
                        {
                            "name": "items",
                            "slot": slot,
                            "multi": slot in catalog.MULTI_SLOTS,
                            "label": i18n.t(f"slot_{slot}", lang),
                            "kind": "item",
                            "options": [_option("item", e, lang) for e in entries],
                        }
                    )
                continue
            spec_field = editor.FIELDS[name]
            kind = "color" if spec_field.category == "color" else "part"
            rows.append(
                {
                    "name": name,
                    "label": i18n.t(f"f_{name}", lang),
                    "kind": kind,
                    "options": [
                        _option(spec_field.category, e, lang)
                        for e in editor.picker_entries(spec_field.category)
                    ],
                }
            )
        tabs.append({"id": tab, "label": i18n.t(f"tab_{tab}", lang), "rows": rows})
    return tabs


def _option(category: str, entry: catalog.Entry, lang: str) -> dict[str, Any]:
    value = entry.hex if category == "color" else entry.id
    return {
        "value": value,
        "id": entry.id,
        "label": i18n.entry_label(entry, lang),
        "thumb": None if category == "color" else f"/parts/{category}/{entry.id}.png",
        "slot": entry.slot,
    }


async def _parent_spec(request: web.Request, actor: Actor, avatar_id: str) -> tuple[AvatarView, AvatarSpec]:
    view, _ = await state_of(request).studio.show(actor, avatar_id)
    try:
        return view, AvatarSpec.from_json(view.spec)
    except SpecError as exc:
        raise BadInput(f"this avatar's description cannot be edited here: {exc}") from None


@routes.get("/a/{id}/edit")
async def editor_page(request: web.Request) -> web.StreamResponse:
    actor = require_actor(request)
    avatar_id = _avatar_id(request)
    view, spec = await _parent_spec(request, actor, avatar_id)
    lang = lang_of(request)
    data = {
        "id": view.id,
        "engine": view.engine,
        "selections": editor.selections(spec),
        "image": f"/a/{view.id}/image.png",
        "slots": {e.id: e.slot for e in catalog.ITEMS},
        "multi": sorted(catalog.MULTI_SLOTS),
        "words": {k: i18n.t(k, lang) for k in ("no_changes", "saving", "changes")},
    }
    return render(
        request,
        "editor.html",
        page="editor",
        avatar=view,
        tabs=_picker(lang),
        # inside <script type="application/json">: no "<" may end the element early
        editor_json=json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e"),
    )


async def _read_state(request: web.Request) -> editor.EditState:
    if request.content_type == "application/json":
        try:
            raw = await request.json()
        except ValueError:
            raise BadInput("the editor sent something that is not JSON.", "Reload the page.") from None
        return editor.EditState.from_json(raw)
    form = await request.post()
    try:
        raw = json.loads(str(form.get("state") or "{}"))
    except ValueError:
        raise BadInput("the editor sent something that is not JSON.", "Reload the page.") from None
    if isinstance(raw, dict) and form.get("text") is not None:
        raw["text"] = str(form.get("text"))
    return editor.EditState.from_json(raw)


@routes.post("/api/avatars/{id}/preview")
async def preview(request: web.Request) -> web.StreamResponse:
    actor = require_actor(request)
    state = state_of(request)
    limit(state.preview_limit, actor.key)
    avatar_id = _avatar_id(request)
    wanted = await _read_state(request)
    _, parent = await _parent_spec(request, actor, avatar_id)
    args = editor.plan(parent, wanted)
    result = editor.apply(parent, args)
    wrong = editor.check_result(result, wanted)
    if wrong:
        labels = ", ".join(i18n.t(f"f_{w}", lang_of(request)) for w in wrong)
        raise BadInput(f"these parts did not take: {labels}.", "Try them one at a time.")
    png = await asyncio.to_thread(editor.render_preview, result.spec)
    return json_response(
        {
            "image": "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
            "selections": editor.selections(result.spec),
            "changed": result.spec != parent,
            "changes": result.changes,
            "notes": result.errors,
        }
    )


@routes.post("/a/{id}/edit")
async def save(request: web.Request) -> web.StreamResponse:
    actor = require_actor(request)
    avatar_id = _avatar_id(request)
    state = state_of(request)
    wanted = await _read_state(request)
    _, parent = await _parent_spec(request, actor, avatar_id)
    args = editor.plan(parent, wanted)
    if args.empty:
        raise BadInput("nothing to change yet.", "Pick a part or describe a change first.")
    pending = await state.studio.submit_edit(actor, avatar_id, **args.kwargs())
    job = state.saves.start(actor.key, avatar_id, pending)
    if "application/json" in request.headers.get("Accept", ""):
        return json_response({"job": job.token, "url": f"/jobs/{job.token}", **job.state()}, status=202)
    return redirect(f"/jobs/{job.token}")


@routes.get("/jobs/{token}")
async def job_page(request: web.Request) -> web.StreamResponse:
    actor = require_actor(request)
    job = state_of(request).saves.get(request.match_info["token"], actor.key)
    if job is None:
        raise NotFoundError("no such save.")
    if not job.done.is_set():  # a chibi edit takes a fraction of a second: spare the progress page
        try:
            await asyncio.wait_for(asyncio.shield(job.done.wait()), 1.5)
        except TimeoutError:
            pass
    current = job.state()
    if current["state"] == "done":
        return redirect(str(current["url"]))
    return render(request, "job.html", page="job", job=job, current=current)


@routes.get("/api/jobs/{token}")
async def api_job(request: web.Request) -> web.StreamResponse:
    actor = require_actor(request)
    job = state_of(request).saves.get(request.match_info["token"], actor.key)
    if job is None:
        raise NotFoundError("no such save.")
    return json_response(job.state())


# --- part thumbnails and generated styles ------------------------------------------------------------------


_PART_CATEGORIES = frozenset(f.category for f in editor.FIELDS.values() if f.category != "color") | {"item"}


@routes.get("/parts/{category}/{entry}.png")
async def part(request: web.Request) -> web.StreamResponse:
    category, entry = request.match_info["category"], request.match_info["entry"]
    if category not in _PART_CATEGORIES or entry not in catalog.ids(category):
        raise web.HTTPNotFound()
    png = await asyncio.to_thread(editor.part_thumbnail, category, entry)
    return web.Response(
        body=png, content_type="image/png", headers={"Cache-Control": "public, max-age=604800"}
    )


@routes.get("/swatches.css")
async def swatches(request: web.Request) -> web.StreamResponse:
    rules = [f".sw-{e.id}{{background-color:{e.hex}}}" for e in catalog.COLORS]
    return web.Response(
        text="\n".join(rules) + "\n",
        content_type="text/css",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@routes.get("/favicon.ico")
async def favicon(request: web.Request) -> web.StreamResponse:
    return redirect("/static/logo.svg", status=301)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok\n", headers={"Cache-Control": "no-store"})


# --- signing in and out, language, forgetting -----------------------------------------------------------


@routes.get("/login")
async def login(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    if state.oauth is None:  # --local-user: nobody signs in
        return redirect("/")
    session = session_of(request)
    oauth_state = secrets.token_urlsafe(24)
    session.set("oauth_state", oauth_state)
    session.set("oauth_at", int(time.time()))
    session.set("next", local_path(request.query.get("next")))
    return redirect(
        state.oauth.authorize_url(state=oauth_state, redirect_uri=state.config.redirect_uri), status=302
    )


@routes.get("/callback")
async def callback(request: web.Request) -> web.StreamResponse:
    """Discord sends the visitor back here with ``code`` and the ``state`` we gave; anything else is refused."""
    state = state_of(request)
    if state.oauth is None:
        return redirect("/")
    session = session_of(request)
    lang = lang_of(request)
    expected = session.pop("oauth_state")
    started = session.pop("oauth_at")
    next_path = local_path(session.pop("next"))
    given = request.query.get("state", "")
    fresh = isinstance(started, int) and time.time() - started <= OAUTH_STATE_MAX_AGE_S
    if not expected or not fresh or not secrets.compare_digest(str(expected).encode(), given.encode()):
        return render(request, "error.html", status=400, message=i18n.t("err_state", lang), status_code=400)
    if request.query.get("error"):
        flash(request, "info", i18n.t("err_cancelled", lang))
        return redirect("/")
    code = request.query.get("code", "")
    if not code or len(code) > 512:
        return render(request, "error.html", status=400, message=i18n.t("err_state", lang), status_code=400)
    try:
        user = await state.oauth.sign_in(code, redirect_uri=state.config.redirect_uri)
    except SignInFailed as exc:
        return render(
            request,
            "error.html",
            status=502,
            message=i18n.t("err_signin", lang, reason=str(exc)),
            status_code=502,
        )
    session.renew()  # a new session id and CSRF token once signed in (no session fixation)
    session.set("uid", str(user.id))
    session.set("name", user.name[:64])
    locale_lang = i18n.from_locale(user.locale)
    if locale_lang is not None:
        session.set("lang", locale_lang)
    return redirect(next_path)


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    session = session_of(request)
    lang = lang_of(request)
    state.codec.revoke(session)
    session.clear()
    flash(request, "info", i18n.t("signed_out", lang))
    return redirect("/")


@routes.get("/lang/{lang}")
async def choose_language(request: web.Request) -> web.StreamResponse:
    lang = request.match_info["lang"]
    if lang not in i18n.LANGS:
        raise web.HTTPNotFound()
    resp = redirect(local_path(request.query.get("next")))
    resp.set_cookie(
        LANG_COOKIE,
        lang,
        max_age=365 * 24 * 3600,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=state_of(request).config.secure,
    )
    return resp


@routes.get("/forget")
async def forget_page(request: web.Request) -> web.StreamResponse:
    actor = require_actor(request)
    view = await state_of(request).gallery.page(actor)
    return render(request, "forget.html", page="forget", total=view.total)


@routes.post("/forget")
async def forget(request: web.Request) -> web.StreamResponse:
    actor = require_actor(request)
    state = state_of(request)
    lang = lang_of(request)
    form = await request.post()
    if form.get("confirm") != "yes":
        flash(request, "error", i18n.t("forget_must_tick", lang))
        return redirect("/forget")
    gone = await state.studio.forget(actor)
    if gone.messages and state.config.bot_token and state.http is not None:
        await delete_bot_messages(
            state.http,
            discord_url=state.config.discord_url,
            bot_token=state.config.bot_token,
            messages=gone.messages,
        )
    session = session_of(request)
    if state.config.local_user is None:
        state.codec.revoke(session)
        session.clear()
    flash(request, "ok", i18n.t("forgotten", lang, avatars=gone.avatars, jobs=gone.jobs, images=gone.images))
    return redirect("/")
