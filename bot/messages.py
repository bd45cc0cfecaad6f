"""Bot and studio messages in English and simplified Chinese: ``t(key, language, **values)``.

No discord import here, so the use cases (bot/studio.py) can speak the reader's language too; the Discord
command-name translator lives in bot/i18n.py.
"""

from __future__ import annotations

from typing import Any

# Bot messages: key -> (English, 中文). ``str.format`` placeholders.
MESSAGES: dict[str, tuple[str, str]] = {
    "queued": ("In the queue: position {position}{eta}.", "排队中：第 {position} 位{eta}。"),
    "eta": (", about {eta} s", "，约 {eta} 秒"),
    "drawing": ("Drawing your avatar...", "正在绘制你的头像……"),
    "made": ("Here you go, {mention}!", "好啦，{mention}！"),
    "made_late": (
        "{mention} your avatar is ready (the original message had expired).",
        "{mention} 你的头像好了（原消息已过期）。",
    ),
    "recovered": (
        "{mention} your avatar is ready (it was queued before the bot restarted).",
        "{mention} 你的头像好了（机器人重启前已排队）。",
    ),
    "recovered_failed": (
        "{mention} sorry, your avatar could not be made after the restart: {reason}",
        "{mention} 抱歉，重启后未能生成你的头像：{reason}",
    ),
    "understood": ("Understood", "已理解"),
    "ignored": ("Ignored (not understood)", "已忽略（未理解）"),
    "changes": ("Changed", "已修改"),
    "notes": ("Notes", "提示"),
    "seed": ("Seed", "种子"),
    "avatar_id": ("Avatar id", "头像编号"),
    "avatar_ids": ("Avatar ids", "头像编号"),
    "failures": ("Could not be made", "未能生成"),
    "photo_not_kept": (
        "Your photo was analysed in memory and not kept.",
        "你的照片只在内存中分析，没有保存。",
    ),
    "not_yours": (
        "That avatar belongs to someone else, so its buttons are not for you. Make your own with /avatar!",
        "这个头像属于别人，按钮只对主人有效。用 /头像 做一个你自己的吧！",
    ),
    "cooldown": (
        "Slow down a little: you can ask again in {seconds} s.",
        "慢一点哦：{seconds} 秒后可以再试。",
    ),
    "queue_limit": (
        "You can have up to {limit} avatars in the making here. Wait for the ones you asked for first.",
        "你在这里最多可同时生成 {limit} 个头像，请先等已提交的完成。",
    ),
    "restarting": (
        "Chibify is restarting. Your request stays queued and arrives here or by DM when it is back.",
        "Chibify 正在重启。你的请求仍在队列中，恢复后会发到这里或私信给你。",
    ),
    "posted_here": ("Your avatar is here: {link}", "你的头像在这里：{link}"),
    "sent_dm": ("I sent your avatar to you by DM.", "我已私信发送你的头像。"),
    "in_history": (
        "I could not post here or DM you; your avatar is in /history.",
        "无法在这里发送或私信你；你的头像在 /历史 中。",
    ),
    "removed_messages": (" Removed {count} message(s) that showed it.", " 已删除 {count} 条显示它的消息。"),
    "daily_limit": (
        "You have made {limit} avatars in this server today, its daily limit. Come back tomorrow!",
        "你今天在这个服务器已生成 {limit} 个头像，达到每日上限。明天再来吧！",
    ),
    "channel_not_allowed": (
        "Chibify is not enabled in this channel. Try {channels}.",
        "此频道未启用 Chibify，请到 {channels} 使用。",
    ),
    "error": ("Something went wrong (ref {ref}). Please try again.", "出了点问题（编号 {ref}），请重试。"),
    "favourite_on": ("{id} is now a favourite.", "{id} 已加入收藏。"),
    "favourite_off": ("{id} is no longer a favourite.", "{id} 已取消收藏。"),
    "deleted": ("Deleted {id}.", "已删除 {id}。"),
    "forget_confirm": (
        "Delete every avatar, image and setting Chibify keeps about you? This cannot be undone.",
        "删除 Chibify 保存的你的所有头像、图片和设置？此操作无法撤销。",
    ),
    "forget_yes": ("Delete everything", "全部删除"),
    "forget_no": ("Keep", "保留"),
    "forgot": (
        "Done: {avatars} avatars, {jobs} jobs, {images} images and {messages} messages that showed them removed.",
        "完成：已删除 {avatars} 个头像、{jobs} 个任务、{images} 张图片和 {messages} 条显示它们的消息。",
    ),
    "forget_cancelled": ("Nothing was deleted.", "没有删除任何内容。"),
    "history_empty": ("You have no avatars yet. Make one with /avatar!", "你还没有头像。用 /头像 做一个吧！"),
    "history_title": (
        "Your avatars: page {page} of {pages} ({total} in all)",
        "你的头像：第 {page}/{pages} 页（共 {total} 个）",
    ),
    "open_placeholder": ("Open an avatar...", "打开一个头像……"),
    "queue_empty": ("You have nothing in the queue.", "你没有排队中的任务。"),
    "queue_line": ("{n}. position {position}{eta}", "{n}. 第 {position} 位{eta}"),
    "queue_running": ("{n}. drawing now", "{n}. 正在绘制"),
    "settings_now": (
        "Language: {language}. Results: {visibility}.",
        "语言：{language}。结果：{visibility}。",
    ),
    "public": ("public in the channel", "在频道公开"),
    "private": ("only visible to you", "仅自己可见"),
    "config_now": (
        "Channels: {channels}. Queue limit per member: {queue}. Daily limit: {daily}. Prompt policy: {policy}. Engine: {engine}.",
        "频道：{channels}。每人排队上限：{queue}。每日上限：{daily}。过滤等级：{policy}。引擎：{engine}。",
    ),
    "every_channel": ("every channel", "所有频道"),
    "no_limit": ("none", "无"),
    "admins_only": (
        "Only server admins (Manage Server) can change this.",
        "只有服务器管理员（管理服务器）可以修改。",
    ),
    "guild_only": ("This works in a server only.", "此命令只能在服务器中使用。"),
    "bad_type": (
        "That file is not a photo ({type}). Send a JPEG, PNG or WebP picture.",
        "这不是照片（{type}）。请发送 JPEG、PNG 或 WebP 图片。",
    ),
    "too_big": (
        "That photo is {size:.1f} MB; the limit is 10 MB. A normal phone photo is fine.",
        "照片有 {size:.1f} MB，上限是 10 MB。普通手机照片就可以。",
    ),
    "no_image": ("That message has no picture to chibify.", "这条消息里没有可以萌化的图片。"),
    "stickers_ready": ("Your sticker pack for {id}.", "{id} 的表情包。"),
    "edit_title": ("Edit your avatar", "修改头像"),
    "edit_label": ("What should change?", "要改什么？"),
    "edit_placeholder": ("e.g. add a crown, make her wink, blue hair", "例如：加皇冠、眨眼、蓝色头发"),
    "button_reroll": ("Re-roll", "重新生成"),
    "button_vary": ("Variations", "变体"),
    "button_edit": ("Edit", "修改"),
    "button_stickers": ("Stickers", "表情包"),
    "button_fav": ("Favourite", "收藏"),
    "button_del": ("Delete", "删除"),
    "button_pick": ("Pick {n}", "选 {n}"),
    "button_prev": ("Previous", "上一页"),
    "button_next": ("Next", "下一页"),
    "help": (
        "**Chibify** makes cute chibi avatars.\n"
        "`/avatar prompt:` describe one (English or 中文), up to 4 at once.\n"
        "`/chibify photo:` turn a selfie into a chibi (the photo is not kept); also: right-click a message > Apps > Chibify, or DM me a photo.\n"
        "`/edit` change the latest (or any) avatar: add/remove items, expression, colours.\n"
        "`/history`, `/show`, `/delete`, `/forget` your avatars; `/queue` your jobs; `/settings` language and privacy.\n"
        "Buttons under a result: re-roll, variations, edit, stickers, favourite, delete. They keep working after restarts.",
        "**Chibify** 生成可爱的萌版头像。\n"
        "`/头像 描述:` 描述你想要的（中文或英文），一次最多 4 张。\n"
        "`/萌化 照片:` 把自拍变成萌版头像（照片不保存）；也可以右键消息 > 应用 > 萌化，或私信发照片给我。\n"
        "`/修改` 修改最新（或任意）头像：添加/移除物品、表情、颜色。\n"
        "`/历史`、`/查看`、`/删除`、`/忘记我` 管理你的头像；`/队列` 查看任务；`/设置` 语言和隐私。\n"
        "结果下方的按钮：重新生成、变体、修改、表情包、收藏、删除。机器人重启后依然有效。",
    ),
}


def t(key: str, lang: str, /, **values: Any) -> str:
    en, zh = MESSAGES[key]
    text = zh if lang == "zh" else en
    return text.format(**values) if values else text
