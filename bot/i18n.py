"""English and simplified Chinese: command names/descriptions (an app_commands Translator) and bot messages.

Command strings are written in English in the cogs (``locale_str``); :class:`ChibifyTranslator` gives Discord
their zh-CN forms at sync time. Bot messages go through :func:`t` with a key and the reader's language.
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.messages import MESSAGES, t

__all__ = ["MESSAGES", "ChibifyTranslator", "language_of", "t"]

# English source text -> simplified Chinese (command, option and choice names, descriptions).
ZH_COMMANDS: dict[str, str] = {
    # names
    "avatar": "头像",
    "edit": "修改",
    "history": "历史",
    "show": "查看",
    "delete": "删除",
    "forget": "忘记我",
    "chibify": "萌化",
    "Chibify": "萌化",
    "queue": "队列",
    "settings": "设置",
    "config": "服务器设置",
    "help": "帮助",
    # options
    "prompt": "描述",
    "count": "数量",
    "seed": "种子",
    "engine": "引擎",
    "add": "添加",
    "remove": "移除",
    "expression": "表情",
    "hair_color": "发色",
    "eye_color": "瞳色",
    "background": "背景",
    "page": "页码",
    "id": "编号",
    "photo": "照片",
    "language": "语言",
    "public": "公开",
    "channel_add": "添加频道",
    "channel_remove": "移除频道",
    "clear_channels": "清空频道",
    "queue_limit": "排队上限",
    "daily_limit": "每日上限",
    "policy": "过滤等级",
    # descriptions
    "Make a chibi avatar from a description": "根据描述生成萌版头像",
    "What to draw, in English or Chinese": "想要画什么（中文或英文）",
    "How many (1-4)": "生成几张（1-4）",
    "Seed for the open choices (same prompt + seed = same avatar)": "随机种子（相同描述和种子得到相同头像）",
    "Which engine draws it": "使用哪个引擎",
    "Change an avatar, keeping the character": "修改头像，保留角色特征",
    "Which avatar (default: your latest)": "哪个头像（默认最新的）",
    "Item to add": "要添加的物品",
    "Item to remove": "要移除的物品",
    "New expression": "新表情",
    "Hair colour (name or #hex)": "发色（名称或 #十六进制）",
    "Eye colour (name or #hex)": "瞳色（名称或 #十六进制）",
    "Background kind or colour": "背景样式或颜色",
    "Free-text change": "自由描述的修改",
    "Your avatars, newest first": "你的头像，最新的在前",
    "Page number": "页码",
    "Show one of your avatars": "查看你的一个头像",
    "The avatar's id": "头像编号",
    "Delete one of your avatars": "删除你的一个头像",
    "Delete everything Chibify keeps about you": "删除 Chibify 保存的关于你的一切",
    "Turn a photo of a face into a chibi avatar (the photo is not kept)": "把人脸照片变成萌版头像（照片不保存）",
    "A photo of a face (JPEG, PNG, WebP; up to 10 MB)": "一张人脸照片（JPEG、PNG、WebP；最大 10 MB）",
    "Changes on top, e.g. add cat ears": "额外修改，例如：加猫耳",
    "Your jobs in the queue": "你排队中的任务",
    "Your language and privacy settings": "你的语言和隐私设置",
    "Language of the bot's replies": "机器人回复的语言",
    "Show results to the channel (True) or only to you (False)": "结果对频道公开（是）或仅自己可见（否）",
    "Server settings for admins": "管理员的服务器设置",
    "Allow results in this channel (none set: every channel)": "允许在此频道使用（未设置：所有频道）",
    "Stop allowing this channel": "不再允许此频道",
    "Allow every channel again": "重新允许所有频道",
    "Jobs one member may have queued at once": "每位成员同时排队的任务数",
    "Avatars one member may make per day": "每位成员每天可生成的头像数",
    "How strictly prompts are filtered": "描述过滤的严格程度",
    "Default engine in this server": "本服务器的默认引擎",
    "How to use Chibify": "Chibify 使用说明",
    # choices
    "Follow Discord": "跟随 Discord",
    "English": "English",
    "Chinese": "中文",
    "strict": "严格",
    "standard": "标准",
    "off": "关闭",
}


class ChibifyTranslator(app_commands.Translator):
    """zh-CN (and zh-TW falls back to it) names, descriptions and choice names."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        if locale not in (discord.Locale.chinese, discord.Locale.taiwan_chinese):
            return None
        return ZH_COMMANDS.get(string.message)


def language_of(locale: discord.Locale | str | None, preference: str | None = None) -> str:
    """ "zh" or "en": an explicit preference ("zh", "en-only") wins, else the Discord locale."""
    if preference == "zh":
        return "zh"
    if preference == "en-only":
        return "en"
    return "zh" if str(locale or "").lower().startswith("zh") else "en"
