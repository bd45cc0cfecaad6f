"""Prompt policy: a cheap check run before any work is queued (guild-configurable level).

Levels: ``"off"`` allows everything; ``"standard"`` refuses sexual content and slurs; ``"strict"`` also refuses
violence and gore. English terms match whole words only (so "Scunthorpe", "Essex" and "skilled" pass);
Chinese terms are curated multi-character words, matched after masking colour words so "红色情侣装"
(red couple outfit) does not read as 色情. The lists are short on purpose: they catch the obvious cases, and a
server that needs more can add moderation bots of its own.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Literal

from generation import catalog

Level = Literal["off", "standard", "strict"]
LEVELS: tuple[str, ...] = ("off", "standard", "strict")


@dataclass(frozen=True)
class PolicyResult:
    allowed: bool
    reason: str = ""  # English, shown to the user when refused
    category: str | None = None  # "sexual", "slur", "violence", "suggestive"
    reason_zh: str = ""


# Each category: (English whole-word terms, Chinese terms, level that refuses it).
# Slurs are stored ROT13 so the source does not display them; they are decoded on first use.
_TERMS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "sexual": (
        ("nsfw", "nude", "nudes", "nudity", "naked", "porn", "porno", "pornographic", "sex", "sexual", "sexy",
         "hentai", "lewd", "ecchi", "erotic", "erotica", "xxx", "boobs", "boobies", "tits", "titties", "nipple",
         "nipples", "genitals", "penis", "vagina", "topless", "bottomless", "lingerie", "fetish", "bdsm",
         "orgasm", "masturbating", "masturbation", "stripper", "striptease", "onlyfans", "r18", "r-18", "18+",
         "horny", "ahegao", "no clothes", "without clothes", "undressed", "rape"),
        ("色情", "裸体", "裸照", "全裸", "赤裸", "半裸", "露点", "做爱", "性交", "性爱", "成人内容", "内射", "自慰",
         "淫荡", "淫乱", "淫秽", "援交", "卖淫", "奶子", "乳头", "下体", "生殖器", "脱光", "没穿衣服", "不穿衣服",
         "涩图", "瑟图", "色图", "工口", "涩涩", "色色", "十八禁", "18禁", "强奸", "强暴"),
        "standard",
    ),
    "slur": (
        ("avttre", "avttn", "snttbg", "snt", "ergneq", "ergneqrq", "puvax", "fcvp", "xvxr", "genaal",
         "jrgonpx", "tbbx", "cnxv", "enturnq", "gbjryurnq", "ornare"),
        ("支那", "黑鬼", "尼哥", "死基佬", "人妖"),
        "standard",
    ),
    "violence": (
        ("blood", "bloody", "gore", "gory", "guts", "corpse", "corpses", "dead body", "murder", "murdered",
         "kill", "killing", "killed", "decapitated", "beheaded", "dismembered", "gun", "guns", "rifle", "pistol",
         "knife", "knives", "weapon", "weapons", "bullet", "bullets", "wound", "wounded", "torture", "suicide",
         "violent", "violence", "massacre", "stab", "stabbed", "stabbing", "bomb", "grenade"),
        ("血腥", "流血", "鲜血", "血迹", "杀人", "杀死", "谋杀", "尸体", "死尸", "砍头", "斩首", "断头", "肢解",
         "内脏", "枪", "手枪", "步枪", "匕首", "持刀", "拿刀", "炸弹", "暴力", "自杀", "虐待"),
        "strict",
    ),
    # suggestive but not explicit: refused only at "strict"
    "suggestive": (("seductive", "sultry", "bikini", "swimsuit"), ("性感", "诱惑", "比基尼"), "strict"),
}  # fmt: skip

# Innocent phrases that contain a listed word ("nude" is also a make-up colour).
_ALLOWED_PHRASES: tuple[str, ...] = (
    "nude lipstick", "nude colour", "nude color", "nude beige", "nude pink", "nude tone", "nude heels",
)  # fmt: skip

_MESSAGES: dict[str, tuple[str, str]] = {
    "sexual": (
        "That prompt asks for sexual content, which Chibify doesn't make. "
        "Try describing hair, eyes, outfit or accessories instead.",
        "这个描述包含色情内容，Chibify 不会生成。可以试试描述发型、眼睛、服装或配饰。",
    ),
    "slur": (
        "That prompt contains a slur, so Chibify won't draw it. Please rephrase it.",
        "这个描述包含歧视性用语，Chibify 不会生成。请换一种说法。",
    ),
    "suggestive": (
        "This server keeps avatars family-friendly, so suggestive prompts aren't drawn. Try a different outfit.",
        "本服务器的头像保持全年龄向，不生成性感风格。换一套服装试试吧。",
    ),
    "violence": (
        "This server keeps avatars free of violence and gore ({word}). Try a different description.",
        "本服务器的头像不含暴力或血腥内容（{word}）。请换一个描述。",
    ),
}

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})


@dataclass(frozen=True)
class _Compiled:
    english: re.Pattern[str]
    chinese: tuple[str, ...]
    level: str


@cache
def _compiled() -> dict[str, _Compiled]:
    out = {}
    for category, (english, chinese, level) in _TERMS.items():
        words = [codecs.decode(w, "rot13") if category == "slur" else w for w in english]
        alternatives = "|".join(_word_pattern(w) for w in sorted(words, key=len, reverse=True))
        pattern = re.compile(rf"(?<![a-z0-9])(?:{alternatives})(?![a-z0-9])")
        out[category] = _Compiled(pattern, chinese, level)
    return out


def _word_pattern(word: str) -> str:
    # letters may repeat ("nuuude") and spaces may be any run of separators ("dead-body")
    parts = []
    for ch in word:
        if ch == " ":
            parts.append(r"[\s\-_.]+")
        elif ch.isalpha():
            parts.append(re.escape(ch) + "+")
        else:
            parts.append(re.escape(ch))
    return "".join(parts)


@cache
def _colour_words() -> tuple[str, ...]:
    # two characters or more: a lone 黑 must not hide a slur such as 黑鬼
    names = (n for e in catalog.COLORS for n in (e.zh, *e.synonyms))
    words = {n for n in names if len(n) > 1 and all("\u4e00" <= c <= "\u9fff" for c in n)}
    return tuple(sorted(words, key=len, reverse=True))


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    for phrase in _ALLOWED_PHRASES:
        text = text.replace(phrase, " ")
    return text


def check_prompt(text: str, level: str = "standard") -> PolicyResult:
    """Allowed, or refused with a short reason (English and Chinese) that the bot can show as is."""
    if level not in LEVELS:
        raise ValueError(f"unknown policy level {level!r} (allowed: {', '.join(LEVELS)})")
    if level == "off" or not text.strip():
        return PolicyResult(True)
    plain = _normalise(text)
    leet = plain.translate(_LEET)
    chinese = plain
    for word in _colour_words():
        chinese = chinese.replace(word, "·")
    chinese = re.sub(r"\s+", "", chinese)
    for category, rules in _compiled().items():
        if rules.level == "strict" and level != "strict":
            continue
        found = rules.english.search(plain) or rules.english.search(leet)
        hit = found.group(0) if found else next((w for w in rules.chinese if w in chinese), None)
        if hit:
            en, zh = _MESSAGES[category]
            shown = f"“{hit}”" if category == "violence" else ""
            return PolicyResult(False, en.format(word=shown), category, zh.format(word=shown))
    return PolicyResult(True)
