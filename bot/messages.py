"""Bot and studio messages in English and simplified Chinese: ``t(key, language, **values)``.

:class:`MessageTable` is the one mechanism for every table of words (key -> English and Chinese, filled in by
its ``t``): :data:`MESSAGES` here for the bot, the studio and the console, ``bot/web/i18n.py``'s ``WEB`` for
the web gallery.

No discord import here, so the use cases (bot/studio.py) can speak the reader's language too; the Discord
command-name translator lives in bot/i18n.py. Languages are "en" and "zh" (simplified Chinese); Discord's
zh-TW locale gets simplified Chinese and is told so once per reply where it matters (``zh_tw_note``).

Some keys have a console form, ``key@console``: the same message with a hint for the ``chibify`` command
line (an option name, a setting). :func:`say` picks it for console actors; Discord never sees it.
"""

from __future__ import annotations

import re
from typing import Any


class MessageTable(dict[str, tuple[str, str]]):
    """Words by key: ``key -> (English, 中文)``, with ``str.format`` placeholders."""

    def t(self, key: str, lang: str, /, **values: Any) -> str:
        """The text of ``key`` in ``lang`` ("zh" for Chinese, English otherwise), placeholders filled in."""
        en, zh = self[key]
        text = zh if lang == "zh" else en
        return text.format(**values) if values else text


# Bot messages.
MESSAGES = MessageTable(
    {
        "queued": ("In the queue: position {position}{eta}.", "排队中：第 {position} 位{eta}。"),
        "eta": (", about {eta} s", "，约 {eta} 秒"),
        "drawing": ("Drawing your avatar...", "正在绘制你的头像……"),
        "waiting": ("Waiting...", "等待中……"),
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
        "posting": ("Posting your avatar…", "正在发送你的头像……"),
        "posted_here": ("Your avatar is here: {link}", "你的头像在这里：{link}"),
        "sent_dm": ("I sent your avatar to you by DM.", "我已私信发送你的头像。"),
        "in_history": (
            "I could not post here or DM you; your avatar is in /history.",
            "无法在这里发送或私信你；你的头像在 /历史 中。",
        ),
        "removed_messages": (
            " Removed {count} message(s) that showed it.",
            " 已删除 {count} 条显示它的消息。",
        ),
        "redrawn_messages": (
            " Took it off {count} message(s) that show other avatars too.",
            " 已从 {count} 条同时显示其他头像的消息中移除它。",
        ),
        "daily_limit": (
            "You have made {limit} avatars in this server today, its daily limit. Come back tomorrow!",
            "你今天在这个服务器已生成 {limit} 个头像，达到每日上限。明天再来吧！",
        ),
        "channel_not_allowed": (
            "Chibify is not enabled in this channel. Try {channels}.",
            "此频道未启用 Chibify，请到 {channels} 使用。",
        ),
        "error": (
            "Something went wrong (ref {ref}). Please try again.",
            "出了点问题（编号 {ref}），请重试。",
        ),
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
        "history_empty": (
            "You have no avatars yet. Make one with /avatar!",
            "你还没有头像。用 /头像 做一个吧！",
        ),
        "history_title": (
            "Your avatars: page {page} of {pages} ({total} in all)",
            "你的头像：第 {page}/{pages} 页（共 {total} 个）",
        ),
        "open_placeholder": ("Open an avatar...", "打开一个头像……"),
        "queue_empty": ("You have nothing in the queue.", "你没有排队中的任务。"),
        "queue_line": ("{n}. position {position}{eta}", "{n}. 第 {position} 位{eta}"),
        "queue_running": ("{n}. drawing now", "{n}. 正在绘制"),
        "queue_workers": ("Workers ({count}):", "绘图进程（{count}）："),
        "queue_worker": (
            "`{id}` on {host}: {engines}; {state}; {served} done; seen {age}",
            "`{id}`（{host}）：{engines}；{state}；已完成 {served} 个；{age}在线",
        ),
        "queue_no_workers": (
            "No worker is connected: pictures wait until one is.",
            "没有连接的绘图进程：图片会等到有进程连接后再画。",
        ),
        "worker_idle": ("idle", "空闲"),
        "worker_busy": ("busy", "忙碌"),
        "worker_starting": ("starting", "启动中"),
        "worker_stopping": ("stopping", "停止中"),
        "seen_now": ("just now", "刚刚"),
        "seen_ago": ("{seconds} s ago", "{seconds} 秒前"),
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
            "`/chibify photo:` turn a selfie into a chibi (the photo is not kept); also: right-click a message > Apps > Chibify, or DM me a photo (its text becomes the prompt).\n"
            "`/edit` change the latest (or any) avatar: add/remove items, expression, colours.\n"
            "`/history`, `/show`, `/delete`, `/forget` your avatars; `/queue` your jobs; `/settings` language and privacy.\n"
            "Under a result: re-roll, variations, edit, favourite, delete, and **Download as…** (PNG up to 2048 px, transparent, round, SVG, blinking GIF/APNG, stickers, a PNGTuber set). "
            "Under a grid: **1-4** open one, **V1-V4** variations of one, **R1-R4** a new take on one, 🔁 a whole new grid. "
            "**Cancel** stops a job while it waits or draws. Buttons keep working after restarts.",
            "**Chibify** 生成可爱的萌版头像。\n"
            "`/头像 描述:` 描述你想要的（中文或英文），一次最多 4 张。\n"
            "`/萌化 照片:` 把自拍变成萌版头像（照片不保存）；也可以右键消息 > 应用 > 萌化，或私信发照片给我（附带的文字会作为描述）。\n"
            "`/修改` 修改最新（或任意）头像：添加/移除物品、表情、颜色。\n"
            "`/历史`、`/查看`、`/删除`、`/忘记我` 管理你的头像；`/队列` 查看任务；`/设置` 语言和隐私。\n"
            "结果下方：重新生成、变体、修改、收藏、删除，以及**下载为……**（最大 2048 像素 PNG、透明、圆形、SVG、眨眼 GIF/APNG、表情包、PNGTuber 套装）。"
            "四宫格下方：**1-4** 打开一张，**V1-V4** 某张的变体，**R1-R4** 某张重画，🔁 整组重画。"
            "**取消** 可在排队或绘制时停止任务。机器人重启后按钮依然有效。",
        ),
        "zh_tw_note": (
            "",
            "（暫未提供繁體中文，以下以簡體中文顯示。）",
        ),
        # --- cancel -------------------------------------------------------------------------------------
        "button_cancel": ("Cancel", "取消"),
        "cancelled": ("Cancelled: nothing was made.", "已取消，没有生成。"),
        "cancelled_job": ("cancelled", "已取消"),
        "cancel_too_late": ("Too late to cancel: it is already finished.", "来不及取消了：已经完成。"),
        "not_your_job": (
            "That job is someone else's, so you cannot cancel it.",
            "这是别人的任务，你不能取消。",
        ),
        # --- grids ----------------------------------------------------------------------------------------
        "button_open_n": ("{n}", "{n}"),
        "button_vary_n": ("V{n}", "V{n}"),
        "button_reroll_n": ("R{n}", "R{n}"),
        "button_again": ("New grid", "整组重画"),
        # --- exports --------------------------------------------------------------------------------------
        "export_placeholder": ("Download as…", "下载为……"),
        "export_placeholder_grid": ("Download all {count} as…", "全部 {count} 张下载为……"),
        "fmt_png": ("PNG {size} px", "PNG {size} 像素"),
        "fmt_transparent": ("Transparent PNG {size} px", "透明背景 PNG {size} 像素"),
        "fmt_circle": ("Round PNG {size} px", "圆形 PNG {size} 像素"),
        "fmt_svg": ("SVG (vector, any size)", "SVG（矢量，任意大小）"),
        "fmt_gif": ("Blinking GIF {size} px", "眨眼 GIF {size} 像素"),
        "fmt_apng": ("Blinking APNG {size} px", "眨眼 APNG {size} 像素"),
        "fmt_stickers": ("Sticker and emoji pack (zip)", "贴纸和表情包（zip）"),
        "fmt_original": ("Original PNG", "原图 PNG"),
        "fmt_pngtuber": ("PNGTuber set {size} px (zip)", "PNGTuber 套装 {size} 像素（zip）"),
        "fmt_desc_pngtuber": (
            "5 expressions × eyes open/closed × mouth open/closed",
            "5 种表情 × 睁眼/闭眼 × 张嘴/闭嘴",
        ),
        "fmt_desc_stickers": ("8 expressions, Discord sizes", "8 种表情，Discord 尺寸"),
        "export_ready": ("Here is {what} of {id}.", "这是 {id} 的{what}。"),
        "export_ready_grid": ("Here is {what} of {count} avatars.", "这是 {count} 个头像的{what}。"),
        "export_smaller": (
            "Sent at {size} px: a bigger file would pass this chat's {limit} upload limit.",
            "以 {size} 像素发送：更大的文件会超过此处 {limit} 的上传上限。",
        ),
        "export_too_big": (
            "That export is {size}, over this chat's {limit} upload limit. Pick a smaller size or PNG.",
            "这个导出有 {size}，超过此处 {limit} 的上传上限。请选更小的尺寸或 PNG。",
        ),
        "export_needs_chibi": (
            "{format} needs an avatar drawn by the chibi engine; PNG works for every avatar.",
            "{format} 需要由 chibi 引擎绘制的头像；PNG 适用于所有头像。",
        ),
        "export_unknown": (
            "There is no {format} download. Pick one from the list.",
            "没有 {format} 这种下载，请从列表中选择。",
        ),
        # --- selfies and DMs ------------------------------------------------------------------------------
        "photo_read": ("From your photo: {read}.", "从你的照片里看出：{read}。"),
        "faces_found": (
            "I found {count} faces and drew face {used} (counting from the left).",
            "我找到了 {count} 张脸，画的是第 {used} 张（从左数）。",
        ),
        "faces_found@console": (
            "I found {count} faces and drew face {used} (counting from the left); pick another with --face N.",
            "我找到了 {count} 张脸，画的是第 {used} 张（从左数）；用 --face N 换一张。",
        ),
        "bad_face": (
            "the face number counts from 1 (the leftmost face) to {max}.",
            "脸的编号从 1（最左边）数到 {max}。",
        ),
        "face_placeholder": ("Use another face…", "换一张脸……"),
        "face_option": ("Face {n} (from the left)", "第 {n} 张脸（从左数）"),
        "face_option_used": ("Face {n} (from the left), drawn above", "第 {n} 张脸（从左数），即上图"),
        "photo_gone": (
            "That photo is no longer in this chat, so I can't draw another face from it. Send it again.",
            "那张照片已不在此对话中，无法换一张脸。请重新发送。",
        ),
        "dm_working": (
            "Working on it: position {position} in the queue{eta}. The photo is read in memory and not kept.",
            "正在处理：排队第 {position} 位{eta}。照片只在内存中读取，不会保存。",
        ),
        "dm_drawing": (
            "Working on it: drawing now. The photo is read in memory and not kept.",
            "正在处理：正在绘制。照片只在内存中读取，不会保存。",
        ),
        "photo_limit": (
            "You already have {limit} photos in the making. Wait for them, then send the next.",
            "你已有 {limit} 张照片在处理中，请等它们完成再发送。",
        ),
        "dm_no_photo": (
            "Send me a photo of a face (with a description if you like), or use /avatar to describe one.",
            "发一张人脸照片给我（可附带描述），或用 /头像 描述一个。",
        ),
        "dm_prompt_used": ("Your words were used as the prompt: {prompt}", "你的文字已作为描述：{prompt}"),
        # --- allowed channels -----------------------------------------------------------------------------
        "and_more": ("{shown} and {more} more", "{shown} 等另外 {more} 个"),
        "policy_off_note": (
            "off (in age-restricted channels only; standard elsewhere and in DMs)",
            "关闭（仅限年龄限制频道；其他频道和私信为标准）",
        ),
        # --- studio errors (the console reads these too; ``@console`` forms carry its hints) ---------------
        "text_nul": (
            "the text contains a NUL byte. Remove it and try again.",
            "文字里有 NUL 字符，请删除后重试。",
        ),
        "text_utf8": (
            "the text is not valid UTF-8. Type it again in plain text.",
            "文字不是有效的 UTF-8，请用纯文本重新输入。",
        ),
        "seed_range": (
            "seed {seed} is out of range. Use a seed from 0 to {max}.",
            "种子 {seed} 超出范围，请用 0 到 {max}。",
        ),
        "count_range": (
            "count {count} is out of range. Ask for 1 to {max} avatars at a time.",
            "数量 {count} 超出范围，一次可生成 1 到 {max} 个。",
        ),
        "nothing_to_change": (
            "nothing to change. Say what to change: add, remove, expression, a colour, background or prompt.",
            "没有要修改的内容。请说明要改什么：添加、移除、表情、颜色、背景或描述。",
        ),
        "nothing_to_change@console": (
            "nothing to change. Say what to change: --add ITEM, --remove ITEM, --expression, a colour or --prompt.",
            "没有要修改的内容。请说明要改什么：--add ITEM、--remove ITEM、--expression、颜色或 --prompt。",
        ),
        "no_change": ("that would not change anything. {detail}", "这不会改变任何东西。{detail}"),
        "try_other_change": ("Try another change.", "换一种修改试试。"),
        "cannot_change": ("that change is not possible: {detail}", "无法这样修改：{detail}"),
        "bad_prompt": ("that prompt cannot be used: {detail}", "这个描述无法使用：{detail}"),
        "photo_too_big": (
            "that photo is {size:.1f} MB; photos may be up to 10 MB. Send a smaller one.",
            "照片有 {size:.1f} MB，上限是 10 MB。请发送小一点的。",
        ),
        "bad_photo": ("that photo cannot be used: {detail}", "这张照片无法使用：{detail}"),
        "page_range": (
            "page {page} does not exist. There are {pages} pages.",
            "第 {page} 页不存在，共 {pages} 页。",
        ),
        "page_start": (
            "page {page} does not exist. Pages start at 1.",
            "第 {page} 页不存在，页码从 1 开始。",
        ),
        "size_range": (
            "size {size} is out of range. Use {low}-{high} pixels.",
            "尺寸 {size} 超出范围，请用 {low}-{high} 像素。",
        ),
        "no_avatars": (
            "you have no avatars yet. Make one first with /avatar.",
            "你还没有头像。先用 /头像 做一个吧。",
        ),
        "no_avatars@console": (
            'you have no avatars yet. Make one first: chibify avatar "...".',
            '你还没有头像。先做一个：chibify avatar "..."。',
        ),
        "no_such_avatar": (
            "no avatar {id!r} in your history. See your avatars with /history.",
            "你的历史中没有头像 {id!r}。用 /历史 查看你的头像。",
        ),
        "no_such_avatar@console": (
            "no avatar {id!r} in your history. See your avatars with `chibify history`.",
            "你的历史中没有头像 {id!r}。用 `chibify history` 查看你的头像。",
        ),
        "could_not_make": ("the avatar could not be made: {reason}", "头像未能生成：{reason}"),
        "busy": (
            "Chibify is very busy right now. Try again in a minute.",
            "Chibify 现在很忙，请过一分钟再试。",
        ),
        "stopping": (
            "Chibify is restarting and takes no new work for a moment. Try again shortly.",
            "Chibify 正在重启，暂时不接新任务，请稍后再试。",
        ),
        "engine_unavailable": (
            "the {engine} engine is not running here. Available: {available}.",
            "这里没有运行 {engine} 引擎。可用：{available}。",
        ),
        "engine_unavailable@console": (
            "the {engine} engine is not running here. Available: {available}. {setting}",
            "这里没有运行 {engine} 引擎。可用：{available}。{setting}",
        ),
        "engine_setting_diffusion": (
            "Start it with CHIBIFY_ENGINE=diffusion and CHIBIFY_DIFFUSION_MODEL=<a diffusers folder>.",
            "用 CHIBIFY_ENGINE=diffusion 和 CHIBIFY_DIFFUSION_MODEL=<diffusers 文件夹> 启动。",
        ),
        "engine_setting_gan": (
            "Start it with CHIBIFY_ENGINE=gan (CHIBIFY_GAN_MODEL picks another model folder).",
            "用 CHIBIFY_ENGINE=gan 启动（CHIBIFY_GAN_MODEL 可指定其他模型文件夹）。",
        ),
        "engine_setting_other": (
            "Start it with CHIBIFY_ENGINE={engine}.",
            "用 CHIBIFY_ENGINE={engine} 启动。",
        ),
        "no_generation": ("generation is not running in this process.", "此进程没有运行生成服务。"),
    }
)

t = MESSAGES.t


def say(key: str, lang: str, /, *, console: bool = False, **values: Any) -> str:
    """``t``, with the ``key@console`` form for console users where there is one."""
    if console and f"{key}@console" in MESSAGES:
        key = f"{key}@console"
    return t(key, lang, **values)


# What the generation layer says about a job (failure reasons, notes while it waits) is English; these
# patterns give the Chinese. Each is matched against the whole text, first match wins, named groups are
# carried over. Text that matches none passes through unchanged; tests/bot/test_messages.py checks that
# every reason the generation layer can give is covered.
_PHOTO_TIP_ZH = "提示：正对镜头，光线充足均匀，整张脸都在照片里。"
_FORMAT_TIP_ZH = "请发送 JPEG、PNG 或 WebP 照片。"
NOTES_ZH: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE | re.DOTALL), zh)
    for pattern, zh in (
        (r"no worker serves '(?P<engine>[^']*)' yet", "还没有工作进程提供 {engine} 引擎，请稍候。"),
        (r"retrying", "正在重试。"),
        (r"took too long(?: \(over (?P<s>[\d.]+) s\))?", "绘制超时。"),
        (r"the result could not be saved", "结果未能保存。"),
        (
            r"the generator stopped; your request stays queued and runs when it is back",
            "生成器已停止；你的请求仍在排队，恢复后会继续。",
        ),
        (r"the generator crashed while drawing it", "生成器在绘制时崩溃了。"),
        (r"the worker process stopped unexpectedly.*", "生成进程意外停止了。"),
        (r"the worker is not running|could not reach the worker.*", "生成进程没有运行。"),
        (r"the stored request could not be read.*", "无法读取已保存的请求。"),
        (
            r"the bot was offline and this request got too old; please ask again",
            "机器人离线期间这个请求已过期，请重新发起。",
        ),
        (
            r"the bot restarted before your photo was processed; please send it again",
            "照片处理前机器人重启了，请重新发送照片。",
        ),
        (r"the (?P<engine>\S+) engine is no longer available", "{engine} 引擎已不可用。"),
        (r"the job finished without an avatar", "任务结束了，但没有生成头像。"),
        # prompts, specs and edits (generation/prompt.py, spec.py, edits.py)
        (r"the prompt must be text", "描述必须是文字。"),
        (
            r"the prompt is (?P<n>\d+) characters long; the limit is (?P<limit>\d+) characters\..*",
            "描述有 {n} 个字符，上限是 {limit} 个。请把主要部分（头发、眼睛、服装、物品）写得简短些。",
        ),
        (
            r"unknown (?P<what>[a-z ]+?) '(?P<text>[^']*)'(?: — did you mean: (?P<close>.+)\?)?(?: \(.*\))?",
            "不认识的{what}：「{text}」{close}",
        ),
        (r"nothing in '(?P<text>.*)' could be understood as a change", "「{text}」里没有能理解的修改。"),
        (
            r"this avatar has no (?P<name>.+?) to remove \(it has: (?P<names>.+)\)",
            "这个头像没有{name}（它有：{names}）。",
        ),
        (r"this avatar has no (?P<name>.+?)(?: to remove)?", "这个头像没有{name}。"),
        (r"(?P<a>.+?) and (?P<b>.+?) cannot be worn together.*", "{a}和{b}不能同时佩戴。"),
        (r"(?P<name>.+) is listed twice", "{name}重复了。"),
        (
            r"'(?P<text>.*)' is not a colour name or #rrggbb hex code",
            "「{text}」不是颜色名，也不是 #rrggbb 颜色代码。",
        ),
        (r"it failed", "生成失败。"),
        # photos (generation/face)
        (r"I couldn't find a face in that photo\..*", "照片里没有找到脸。" + _PHOTO_TIP_ZH),
        (
            r"I found a face but couldn't make out its features\..*",
            "找到了脸，但看不清五官。" + _PHOTO_TIP_ZH,
        ),
        (r"The face is too small or too dark to see clearly\..*", "脸太小或太暗，看不清楚。" + _PHOTO_TIP_ZH),
        (
            r"Only part of the face is inside that photo.*",
            "照片里只有脸的一部分，认不出是谁。" + _PHOTO_TIP_ZH,
        ),
        (
            r"That photo has (?P<n>\d+) faces?; pick a number from 1 to \d+ \(left to right\)\.",
            "这张照片有 {n} 张脸；请选 1 到 {n} 之间的数字（从左数）。",
        ),
        (r"That file is not a picture\..*", "这个文件不是图片。" + _FORMAT_TIP_ZH),
        (r"(?P<kind>.+) pictures are not supported yet\..*", "暂不支持 {kind} 图片。" + _FORMAT_TIP_ZH),
        (
            r"That file is (?P<mb>[\d.]+) MB; the limit is (?P<limit>[\d.]+) MB\..*",
            "文件大小 {mb} MB，上限是 {limit} MB。普通手机照片就可以。",
        ),
        (
            r"That picture is (?P<w>\d+)×(?P<h>\d+) pixels; the limit is (?P<mp>[\d.]+) megapixels\..*",
            "图片尺寸 {w}×{h} 像素，上限是 {mp} 百万像素。请发一张小一点的。",
        ),
        (r"That picture is (?:far )?too large to process\.", "图片太大，无法处理。"),
        (r"That picture has no pixels\.", "图片没有像素。"),
        (r"That picture seems damaged.*", "图片似乎已损坏，无法读取。"),
    )
)


_WHAT_ZH = {
    "item": "物品", "expression": "表情", "skin tone": "肤色", "colour": "颜色", "background": "背景",
    "hair style": "发型", "outfit": "服装", "grey in the hair": "白发", "category": "类别",
}  # fmt: skip


def _zh_names(text: str) -> str:
    """Catalog names in English ("cat ears, halo") -> their Chinese names; unknown words stay."""
    from generation import catalog

    out = []
    for name in text.split(", "):
        bare = name.strip().strip("'")
        zh = next(
            (e.zh for entries in catalog.CATEGORIES.values() for e in entries if bare in (e.en, e.id)), bare
        )
        out.append(zh)
    return "、".join(out)


def note(text: str, lang: str) -> str:
    """A reason or note from the generation layer in the reader's language (see ``NOTES_ZH``)."""
    if lang != "zh" or not text:
        return text
    for pattern, zh in NOTES_ZH:
        match = pattern.fullmatch(text.strip())
        if match:
            values = {k: v or "" for k, v in match.groupdict().items()}
            for key in ("name", "names", "a", "b"):
                if values.get(key):
                    values[key] = _zh_names(values[key])
            if "what" in values:
                values["what"] = _WHAT_ZH.get(values["what"], values["what"])
            if values.get("close"):
                values["close"] = f"——你是不是想说：{_zh_names(values['close'])}？"
            return zh.format(**values)
    return text


def capitalised(text: str) -> str:
    """Messages start lower-case so the console can print ``error: ...``; Discord shows them as sentences."""
    return text[:1].upper() + text[1:] if text[:1].islower() else text
