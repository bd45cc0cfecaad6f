"""The web's words in English and simplified Chinese, and which of the two a visitor reads.

The language comes from, in order: the visitor's own choice (the EN / 中文 switch, a cookie), the locale
Discord reported at sign-in, then the browser's ``Accept-Language``.
"""

from __future__ import annotations

from bot.messages import MessageTable
from generation import catalog

LANGS = ("en", "zh")

# The web's own words, in the same kind of table as the bot's messages (bot/messages.py).
WEB = MessageTable(
    {
        "tagline": ("Cute chibi avatars that stay yours.", "可爱的萌版头像，永远属于你。"),
        "landing_lead": (
            "Browse every avatar you made with the Chibify bot, dress them up part by part, and download them "
            "as PNG, SVG, a blinking GIF or a sticker pack.",
            "浏览你用 Chibify 机器人做的所有头像，逐个部件打扮它们，并下载为 PNG、SVG、眨眼动图或表情包。",
        ),
        "sign_in": ("Sign in with Discord", "使用 Discord 登录"),
        "sign_in_note": (
            "We only ask Discord who you are (the identify scope). Nothing is posted for you.",
            "我们只向 Discord 询问你是谁（identify 权限），不会替你发布任何内容。",
        ),
        "sign_out": ("Sign out", "退出登录"),
        "signed_out": ("You are signed out. See you soon!", "你已退出登录，回头见！"),
        "signed_in_as": ("Signed in as {name}", "已登录：{name}"),
        "local_user": ("Local gallery of {name}", "{name} 的本地图库"),
        "my_avatars": ("My avatars", "我的头像"),
        "gallery_count": ("{total} avatars", "共 {total} 个头像"),
        "gallery_found": ("{total} found for “{query}”", "“{query}” 找到 {total} 个"),
        "search": ("Search", "搜索"),
        "search_placeholder": ("Search by prompt or item, e.g. crown", "按描述或物品搜索，例如：皇冠"),
        "favourites": ("Favourites", "收藏"),
        "all": ("All", "全部"),
        "favourite": ("Favourite", "收藏"),
        "unfavourite": ("Unfavourite", "取消收藏"),
        "empty_title": ("No avatars here yet", "这里还没有头像"),
        "empty_discord": (
            "Make one in Discord with /avatar, or send the bot a selfie. It shows up here at once.",
            "在 Discord 用 /头像 做一个，或者给机器人发一张自拍，马上就会出现在这里。",
        ),
        "empty_console": (
            'Make one with: chibify avatar "pink twin tails, cat ears" --user {name}',
            '用这条命令做一个：chibify avatar "粉色双马尾，猫耳" --user {name}',
        ),
        "empty_search": ("Nothing matches. Try another word.", "没有匹配的头像，换个词试试。"),
        "prev": ("Newer", "上一页"),
        "next": ("Older", "下一页"),
        "page_of": ("Page {page} of {pages}", "第 {page}/{pages} 页"),
        "kind_prompt": ("made", "生成"),
        "kind_edit": ("edit", "修改"),
        "kind_variation": ("variation", "变体"),
        "kind_reroll": ("re-roll", "重新生成"),
        "kind_selfie": ("selfie", "自拍"),
        "no_prompt": ("(no prompt)", "（无描述）"),
        "edit": ("Edit", "编辑"),
        "open": ("Open", "打开"),
        "back_to_gallery": ("All my avatars", "我的全部头像"),
        "details": ("Details", "详情"),
        "prompt": ("Prompt", "描述"),
        "engine": ("Engine", "引擎"),
        "seed": ("Seed", "种子"),
        "made_on": ("Made", "创建于"),
        "avatar_id": ("Avatar id", "头像编号"),
        "lineage": ("Family tree", "家族树"),
        "lineage_note": (
            "Where this avatar came from, and everything made from it.",
            "这个头像的来历，以及由它衍生出的一切。",
        ),
        "this_one": ("this one", "当前"),
        "downloads": ("Downloads", "下载"),
        "dl_png": ("PNG {size} px", "PNG {size} 像素"),
        "dl_transparent": ("Transparent PNG", "透明背景 PNG"),
        "dl_circle": ("Round PNG", "圆形 PNG"),
        "dl_svg": ("SVG (vector)", "SVG（矢量）"),
        "dl_gif": ("Blinking GIF", "眨眼 GIF"),
        "dl_apng": ("Blinking APNG", "眨眼 APNG"),
        "dl_stickers": ("Sticker pack (zip)", "表情包（zip）"),
        "dl_original": ("Original PNG", "原图 PNG"),
        "dl_painted_note": (
            "This avatar was painted by the {engine} engine: its picture downloads as it is.",
            "这个头像由 {engine} 引擎绘制：只能下载原图。",
        ),
        "delete": ("Delete", "删除"),
        "delete_ask": ("Delete this avatar?", "删除这个头像？"),
        "delete_note": (
            "It disappears from here and from Discord messages that showed it. This cannot be undone.",
            "它会从这里以及显示它的 Discord 消息中消失，且无法撤销。",
        ),
        "delete_yes": ("Yes, delete it", "确定删除"),
        "deleted": ("Deleted {id}.", "已删除 {id}。"),
        "deleted_messages": (
            " {count} Discord message(s) that showed it were removed too.",
            " 同时删除了 {count} 条显示它的 Discord 消息。",
        ),
        "saved": (
            "Saved! This new avatar is a child of the one you edited.",
            "保存好啦！新头像是你编辑的那个头像的子头像。",
        ),
        "editor_title": ("Dress up", "换装编辑"),
        "editor_lead": (
            "Pick parts on the right; the preview follows. Everything else stays the same character.",
            "在右边挑选部件，预览会实时更新。其余部分保持同一个角色。",
        ),
        "preview": ("Preview", "预览"),
        "preview_painted": (
            "Preview drawn by the chibi engine; saving repaints only what changed on your {engine} picture.",
            "预览由萌版引擎绘制；保存时只会在你的 {engine} 图片上重绘修改的部分。",
        ),
        "undo": ("Undo", "撤销"),
        "reset": ("Start over", "重来"),
        "save": ("Save as new avatar", "保存为新头像"),
        "saving": ("Saving…", "正在保存……"),
        "text_label": ("Or say what to change", "或者直接说要改什么"),
        "text_placeholder": ("e.g. add a crown, make her wink", "例如：加皇冠、眨眼"),
        "text_apply": ("Try it", "试试"),
        "no_changes": ("No changes yet: pick something!", "还没有修改：挑点什么吧！"),
        "changes": ("Changes", "修改"),
        "custom_colour": ("Custom colour", "自定义颜色"),
        "tab_hair": ("Hair", "头发"),
        "tab_eyes": ("Eyes", "眼睛"),
        "tab_brows": ("Brows", "眉毛"),
        "tab_expression": ("Expression", "表情"),
        "tab_items": ("Items", "物品"),
        "tab_outfit": ("Outfit", "服装"),
        "tab_background": ("Background", "背景"),
        "tab_skin": ("Skin & face", "肤色与脸型"),
        "f_hair_style": ("Hair style", "发型"),
        "f_hair_front": ("Fringe", "刘海"),
        "f_hair_color": ("Hair colour", "发色"),
        "f_eye_style": ("Eye shape", "眼型"),
        "f_eye_color": ("Eye colour", "瞳色"),
        "f_brows": ("Brows", "眉毛"),
        "f_expression": ("Expression", "表情"),
        "f_blush": ("Blush", "腮红"),
        "f_nose": ("Nose", "鼻子"),
        "f_face_shape": ("Face shape", "脸型"),
        "f_facial_hair": ("Facial hair", "胡子"),
        "f_skin_tone": ("Skin tone", "肤色"),
        "f_outfit": ("Outfit", "服装"),
        "f_outfit_color": ("Outfit colour", "服装颜色"),
        "f_background": ("Background", "背景"),
        "f_background_color": ("Background colour", "背景颜色"),
        "f_items": ("Items", "物品"),
        "slot_head_top": ("Hats and crowns", "帽子与皇冠"),
        "slot_ears": ("Ears and horns", "耳朵与角"),
        "slot_hair_accessory": ("Hair accessories", "发饰"),
        "slot_headphones": ("Headphones", "耳机"),
        "slot_eyes": ("Glasses", "眼镜"),
        "slot_mouth": ("Mouth", "嘴部"),
        "slot_face": ("Face marks (several allowed)", "脸部装饰（可多选）"),
        "slot_ear_jewelry": ("Earrings", "耳饰"),
        "slot_neck": ("Neck", "颈部"),
        "slot_head_wrap": ("Head wraps", "头巾"),
        "slot_back": ("Wings", "翅膀"),
        "slot_held": ("Held", "手持"),
        "job_title": ("Making your avatar", "正在制作你的头像"),
        "job_queued": ("In the queue: position {position}", "排队中：第 {position} 位"),
        "job_eta": ("about {eta} s", "约 {eta} 秒"),
        "job_running": ("Drawing now…", "正在绘制……"),
        "job_step": ("Painting: step {step} of {total}", "绘制中：第 {step}/{total} 步"),
        "job_failed": ("That edit could not be made: {error}", "这次修改未能完成：{error}"),
        "job_done": ("Done!", "完成！"),
        "job_back": ("Back to the editor", "回到编辑器"),
        "forget": ("Forget me", "忘记我"),
        "forget_title": ("Forget me", "忘记我"),
        "forget_lead": (
            "This deletes every avatar, picture, job and setting Chibify keeps about you, here and in Discord. It cannot be undone.",
            "这会删除 Chibify 保存的你的所有头像、图片、任务和设置（包括 Discord 中的）。此操作无法撤销。",
        ),
        "forget_count": ("You have {total} avatars.", "你有 {total} 个头像。"),
        "forget_confirm": ("I understand: delete everything", "我明白：全部删除"),
        "forget_yes": ("Delete everything", "全部删除"),
        "forget_keep": ("Keep my avatars", "保留我的头像"),
        "forget_must_tick": ("Tick the box to confirm first.", "请先勾选确认框。"),
        "forgotten": (
            "Done: {avatars} avatars, {jobs} jobs and {images} images were deleted.",
            "完成：已删除 {avatars} 个头像、{jobs} 个任务和 {images} 张图片。",
        ),
        "err_404_title": ("Not found", "找不到"),
        "err_404": ("There is nothing here, or it is not yours to see.", "这里什么都没有，或者它不属于你。"),
        "err_401": ("Sign in first.", "请先登录。"),
        "err_403_csrf": (
            "This form has expired (it was opened before you signed in or out). Reload the page and try again.",
            "表单已过期（它是在你登录或退出之前打开的）。请刷新页面再试。",
        ),
        "err_state": (
            "This sign-in did not start here, or it took too long. Please sign in again.",
            "这次登录不是从本站发起的，或已超时。请重新登录。",
        ),
        "err_cancelled": ("Sign-in cancelled.", "已取消登录。"),
        "err_signin": ("Sign-in failed: {reason}", "登录失败：{reason}"),
        "err_rate": ("Slow down a little: try again in {seconds} s.", "慢一点哦：{seconds} 秒后再试。"),
        "err_bad": ("That did not work: {reason}", "没有成功：{reason}"),
        "err_500": (
            "Something went wrong (ref {ref}). Please try again.",
            "出了点问题（编号 {ref}），请重试。",
        ),
        "err_title": ("Oops", "哎呀"),
        "home": ("Home", "首页"),
        "back": ("Back", "返回"),
        "language": ("Language", "语言"),
        "footer": (
            "Chibify is self-hosted: your avatars stay on this server. Selfies are never kept.",
            "Chibify 为自托管服务：你的头像只保存在这台服务器上。自拍照片从不保存。",
        ),
        "skip": ("Skip to content", "跳到正文"),
    }
)

#: ``t(key, lang, **values)``: the web's words, as ``bot.messages.t`` gives the bot's.
t = WEB.t


def entry_label(entry: catalog.Entry, lang: str) -> str:
    return entry.zh if lang == "zh" else entry.en


def from_locale(locale: str | None) -> str | None:
    """A Discord locale ("zh-CN", "en-US"...) -> "zh" / "en"; None when unknown."""
    if not locale:
        return None
    return "zh" if locale.lower().startswith("zh") else "en"


def from_accept_language(header: str | None) -> str:
    """The first of English and Chinese in an ``Accept-Language`` header, by weight; English by default."""
    best, best_q = "en", -1.0
    for part in (header or "").split(","):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag:
            continue
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        lang = "zh" if tag.startswith("zh") else "en" if tag.startswith("en") else None
        if lang is not None and q > best_q:
            best, best_q = lang, q
    return best
