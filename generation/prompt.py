"""Text (English and simplified Chinese, mixed freely) -> :class:`~generation.spec.AvatarSpec`.

How it works (docs/prompts.md has the long version):

1. **Tokenise**: English words, hex colours and symbols are tokens; every Chinese character is a token.
2. **Segment** by longest match against one lexicon built (lazily, once) from the catalog's names and
   synonyms plus the parser's own small word lists (part nouns, stop words, negations, archetypes). A phrase
   key joins English tokens with spaces and Chinese ones with nothing, so "粉色 twin tails" and "粉色双马尾"
   segment the same way. Unmatched tokens become the ``ignored`` phrases, as the user wrote them.
3. **Interpret**: negation marks the next phrase; colours attach to the part they name ("pink hair",
   "蓝眼睛", "red hoodie", "绿色背景", "粉色双马尾"), forwards or, in "头发粉色" order, backwards; everything
   else sets its field. Archetypes ("witch", "女巫") fill parts that explicit words did not set; gender and
   age words only nudge fields that nothing else set.

Open fields stay ``None`` so the seed decides them (:meth:`AvatarSpec.resolved`).
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from generation import catalog
from generation.spec import MAX_SEED, AvatarSpec

MAX_PROMPT_CHARS = 500


class PromptError(ValueError):
    """The prompt cannot be parsed at all (for example: too long); the message says why."""


@dataclass(frozen=True)
class Understood:
    """One phrase the parser understood: as written, the spec field it set and the value's labels."""

    phrase: str
    field: str  # "hair.color", "items", "expression", "archetype", "subject", ...
    value: str  # a catalog id, a colour id or "#rrggbb", an archetype id
    en: str
    zh: str


@dataclass(frozen=True)
class ParseResult:
    spec: AvatarSpec
    understood: list[Understood] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # replacements and things that could not be applied


# --------------------------------------------------------------------------------------------------------
# Word lists. Kept small and readable; catalog names and synonyms do most of the work.

# Nouns naming a part, so a colour next to them knows where it goes.
PART_NOUNS: dict[str, tuple[str, ...]] = {
    "hair": ("hair", "hair colour", "hair color", "hairstyle", "hair style", "haired", "hair coloured", "hair colored",
             "头发", "发", "发色", "发型", "毛发", "头发颜色", "秀发"),
    "eyes": ("eyes", "eye", "eyed", "eye colour", "eye color", "iris", "眼睛", "眼", "瞳", "瞳孔", "眸", "眼眸", "眼珠", "瞳色"),
    "outfit": ("outfit", "clothes", "clothing", "top", "jacket", "coat", "uniform", "衣服", "上衣", "服装", "外套", "衣"),
    "background": ("background", "bg", "backdrop", "背景", "背景色", "底色", "背景颜色"),
    "skin": ("skin", "skin tone", "skin colour", "skin color", "complexion", "皮肤", "肤色", "肌肤"),
    "face": ("face", "脸", "脸型", "脸蛋"),
    "brows": ("brows", "eyebrows", "eyebrow", "眉毛", "眉"),
}  # fmt: skip

# Words that carry no meaning for the avatar: neither understood nor reported as ignored.
STOP_WORDS: tuple[str, ...] = (
    # English
    "a", "an", "the", "with", "and", "wearing", "wears", "wear", "worn", "in", "on", "of", "has", "have",
    "having", "her", "his", "my", "their", "its", "is", "are", "be", "to", "into", "for", "very", "some",
    "cute", "kawaii", "chibi", "avatar", "style", "please", "make", "me", "add", "put", "give", "set",
    "change", "turn", "that", "who", "this", "it", "him", "them", "she", "he", "they", "i", "want",
    "colour", "color", "coloured", "colored", "little", "pair", "holding", "holds", "also", "plus", "&", "+",
    "character", "person", "someone", "picture", "portrait", "drawing", "pfp", "icon", "anime", "cartoon",
    "really", "looking", "look", "looks", "but", "as", "like", "instead", "now", "got", "at", "by", "one",
    "two", "kid", "child", "young", "pretty", "lovely", "adorable", "sweet", "nice", "cool", "lots", "lot",
    "tone", "toned", "let's", "lets", "can", "you", "draw", "create", "generate", "putting", "super", "so", "too", "just", "only", "please", "thanks", "thx", "pls", "plz", "go",
    # Chinese (particles, measure words, verbs of wearing/holding/changing)
    "的", "了", "和", "还有", "以及", "跟", "与", "同", "一个", "一只", "一位", "一名", "个", "只", "位", "戴",
    "戴着", "戴上", "穿", "穿着", "穿上", "有", "拿着", "拿", "手持", "是", "给", "我", "我的", "她", "他",
    "她的", "他的", "它", "把", "换成", "换", "改成", "改为", "变成", "成", "加", "加上", "添加", "要", "请",
    "帮我", "画", "一下", "很", "非常", "超", "可爱", "萌", "萌版", "q版", "头像", "角色", "带", "带着",
    "再", "也", "都", "又", "着", "上", "色", "颜色", "一点", "点", "让", "使", "变", "变得", "改", "弄",
    "换个", "来个", "来", "生成", "小", "人", "头", "啊", "吧", "呀", "哦", "呢", "嘛", "一", "在", "用",
    "头上", "脸上", "身上", "手里", "其他", "其它", "不变", "保持", "留", "留着", "留了", "蓄", "蓄着", "长着",
    "满头", "一头", "coloured", "colored", "tinted", "dyed", "染", "染成", "染了", "ish", "under", "满脸", "树下", "big", "large", "huge", "tree", "trees", "树",
)  # fmt: skip

# "or"-like words that continue a negation: "no glasses or hat".
OR_WORDS: tuple[str, ...] = ("or", "nor", "或", "或者", "也不", "也没有", "还是")

NEGATIONS: tuple[str, ...] = (
    "no", "not", "without", "remove", "removing", "minus", "take off", "get rid of", "don't", "dont",
    "doesn't", "isn't", "never", "drop", "delete", "w/o", "sans", "lose",
    "不要", "没有", "没", "不戴", "不穿", "不带", "无", "去掉", "去除", "摘掉", "摘下", "拿掉", "删掉", "删除",
    "别", "不", "不是", "取下", "脱掉", "脱下", "移除", "不用", "不需要", "取掉", "拿走", "除掉",
)  # fmt: skip

# Item words that mean "anything in this slot" when negated or removed ("no glasses", "没有帽子").
GENERIC_SLOT_WORDS: dict[str, str] = {
    "glasses": "eyes", "spectacles": "eyes", "eyewear": "eyes", "眼镜": "eyes",
    "hat": "head_top", "hats": "head_top", "headwear": "head_top", "帽子": "head_top", "帽": "head_top",
    "ears": "ears", "animal ears": "ears", "耳朵": "ears",
    "wings": "back", "翅膀": "back", "earrings": "ear_jewelry", "耳环": "ear_jewelry",
    "mask": "mouth", "口罩": "mouth", "scarf": "neck", "围巾": "neck",
}  # fmt: skip

# Shade words that modify the next colour: "dark red", "浅绿".
SHADES: dict[str, str] = {
    "dark": "dark", "deep": "dark", "深": "dark", "light": "light", "pale": "light", "pastel": "light",
    "bright": "light", "浅": "light", "淡": "light", "亮": "light",
}  # fmt: skip

# Compound phrases that set several fields at once (field -> value; colours by catalog id).
COMPOUNDS: dict[str, dict[str, str]] = {
    "黑长直": {"hair.style": "long_straight", "hair.color": "black"},
    "dark hair": {"hair.color": "dark_brown"},
    "dark eyes": {"eyes.color": "dark_brown"},
    "light hair": {"hair.color": "blonde"},
    "fair hair": {"hair.color": "blonde"},
    "white hair": {"hair.color": "white"},
    "white haired": {"hair.color": "white"},
    "snow white hair": {"hair.color": "white"},
    "白头发": {"hair.color": "white"},
    "白发苍苍": {"hair.color": "white"},
    "满头白发": {"hair.color": "white"},
    "金发碧眼": {"hair.color": "blonde", "eyes.color": "blue"},
    "blue sky": {"background.kind": "gradient", "background.color": "sky_blue"},
    "蓝天": {"background.kind": "gradient", "background.color": "sky_blue"},
    "蓝天白云": {"background.kind": "gradient", "background.color": "sky_blue"},
    "grey hair": {"hair.color": "silver"},
    "gray hair": {"hair.color": "silver"},
    "银发": {"hair.color": "silver"},
    "黑发": {"hair.color": "black"},
    "红发": {"hair.color": "red"},
    "粉发": {"hair.color": "pink"},
    "蓝发": {"hair.color": "blue"},
    "紫发": {"hair.color": "purple"},
    "绿发": {"hair.color": "green"},
    "棕发": {"hair.color": "brown"},
    "黑眼睛": {"eyes.color": "black"},
    "红瞳": {"eyes.color": "red"},
    "异色瞳": {"eyes.color": "teal"},
    "碧眼": {"eyes.color": "blue"},
    "蓝瞳": {"eyes.color": "blue"},
}


@dataclass(frozen=True)
class Archetype:
    id: str
    en: str
    zh: str
    words: tuple[str, ...]
    parts: dict[str, Any]  # field -> value; "items" -> tuple of item ids; colours by catalog id
    subject: str | None = None  # "girl" / "boy": the same nudges as the gender words


ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("witch", "witch", "女巫", ("witch", "女巫", "魔女", "小女巫"),
              {"items": ("witch_hat",), "outfit.style": "robe", "outfit.color": "purple"}),
    Archetype("wizard", "wizard", "巫师", ("wizard", "mage", "sorcerer", "magician", "巫师", "魔法师", "法师"),
              {"items": ("witch_hat", "magic_wand"), "outfit.style": "robe", "outfit.color": "navy"}),
    Archetype("vampire", "vampire", "吸血鬼", ("vampire", "吸血鬼"),
              {"items": ("fangs",), "outfit.style": "cape", "outfit.color": "black", "eyes.color": "red",
               "expression": "smirk"}),
    Archetype("angel", "angel", "天使", ("angel", "天使", "小天使"),
              {"items": ("halo", "angel_wings"), "outfit.color": "white", "expression": "smile"}),
    Archetype("devil", "devil", "恶魔", ("devil", "demon", "imp", "恶魔", "小恶魔", "魔鬼"),
              {"items": ("horns", "bat_wings"), "outfit.color": "red", "expression": "smirk"}),
    Archetype("pirate", "pirate", "海盗", ("pirate", "海盗"),
              {"items": ("eyepatch", "bandana"), "expression": "grin"}),
    Archetype("cat_girl", "cat girl", "猫娘", ("cat girl", "catgirl", "neko", "neko girl", "猫娘", "猫女", "猫耳娘"),
              {"items": ("cat_ears",), "expression": "cat_mouth"}, "girl"),
    Archetype("cat_boy", "cat boy", "猫男孩", ("cat boy", "catboy", "neko boy", "猫男孩", "猫男"),
              {"items": ("cat_ears",), "expression": "cat_mouth"}, "boy"),
    Archetype("fox_girl", "fox girl", "狐狸女孩", ("fox girl", "foxgirl", "kitsune", "狐狸女孩", "狐娘", "狐女"),
              {"items": ("fox_ears",)}, "girl"),
    Archetype("fox_boy", "fox boy", "狐狸男孩", ("fox boy", "foxboy", "狐狸男孩", "狐男"),
              {"items": ("fox_ears",)}, "boy"),
    Archetype("bunny_girl", "bunny girl", "兔子女孩", ("bunny girl", "bunnygirl", "rabbit girl", "兔子女孩", "兔娘", "兔女郎"),
              {"items": ("bunny_ears",)}, "girl"),
    Archetype("bunny_boy", "bunny boy", "兔子男孩", ("bunny boy", "rabbit boy", "兔子男孩"),
              {"items": ("bunny_ears",)}, "boy"),
    Archetype("student", "student", "学生", ("student", "pupil", "学生"), {"outfit.style": "blazer"}),
    Archetype("schoolgirl", "schoolgirl", "女学生", ("schoolgirl", "school girl", "女学生", "女高中生", "jk"),
              {"outfit.style": "sailor"}, "girl"),
    Archetype("schoolboy", "schoolboy", "男学生", ("schoolboy", "school boy", "男学生", "男高中生"),
              {"outfit.style": "blazer"}, "boy"),
    Archetype("knight", "knight", "骑士", ("knight", "paladin", "骑士"),
              {"outfit.style": "armor", "expression": "determined"}),
    Archetype("astronaut", "astronaut", "宇航员", ("astronaut", "spaceman", "cosmonaut", "宇航员", "航天员"),
              {"outfit.style": "spacesuit", "background.kind": "stars", "background.color": "navy"}),
    Archetype("princess", "princess", "公主", ("princess", "公主", "小公主"),
              {"items": ("crown",), "outfit.style": "dress"}, "girl"),
    Archetype("prince", "prince", "王子", ("prince", "王子", "小王子"),
              {"items": ("crown",), "outfit.style": "cape"}, "boy"),
    Archetype("queen", "queen", "女王", ("queen", "女王"), {"items": ("crown",), "outfit.style": "dress"}, "girl"),
    Archetype("king", "king", "国王", ("king", "国王"), {"items": ("crown",), "outfit.style": "cape"}, "boy"),
    Archetype("nerd", "nerd", "书呆子", ("nerd", "geek", "bookworm", "书呆子", "学霸", "学霸风"),
              {"items": ("square_glasses",), "outfit.style": "sweater"}),
    Archetype("gamer", "gamer", "游戏玩家", ("gamer", "streamer", "游戏玩家", "玩家", "电竞", "主播"),
              {"items": ("headphones",), "outfit.style": "hoodie"}),
    Archetype("santa", "Santa", "圣诞老人", ("santa", "santa claus", "father christmas", "圣诞老人"),
              {"items": ("santa_hat",), "facial_hair": "beard", "hair.color": "white", "outfit.color": "red",
               "expression": "laugh"}),
    Archetype("idol", "idol", "偶像", ("idol", "popstar", "pop star", "偶像", "爱豆", "idol偶像"),
              {"items": ("bow",), "eyes.style": "sparkle", "expression": "wink", "background.kind": "hearts"}),
    Archetype("elf", "elf", "精灵", ("elf", "elves", "elven", "high elf", "wood elf", "精灵", "小精灵", "精灵族", "妖精"),
              {"items": ("elf_ears",), "outfit.color": "green"}),
    Archetype("fairy", "fairy", "仙子", ("fairy", "pixie fairy", "fae", "仙子", "花仙子", "小仙子"),
              {"items": ("elf_ears", "flower_crown", "magic_wand"), "background.kind": "blossoms"}),
    Archetype("ninja", "ninja", "忍者", ("ninja", "忍者"),
              {"items": ("face_mask", "bandana"), "outfit.color": "charcoal", "expression": "determined"}),
)  # fmt: skip

# Gender and age words: nudges applied only to fields nothing else set.
SUBJECTS: dict[str, str] = {
    "girl": "girl", "woman": "girl", "lady": "girl", "female": "girl", "gal": "girl", "女孩": "girl",
    "女生": "girl", "少女": "girl", "女": "girl", "女人": "girl", "女性": "girl", "妹子": "girl",
    "小姐姐": "girl", "女孩子": "girl", "姑娘": "girl", "小女孩": "girl",
    "boy": "boy", "male": "boy", "guy": "boy", "dude": "boy", "男孩": "boy", "男生": "boy", "少年": "boy",
    "男": "boy", "小哥哥": "boy", "男孩子": "boy", "小男孩": "boy",
    "man": "man", "men": "man", "男人": "man", "男性": "man", "大叔": "man", "gentleman": "man",
    "old": "old", "elderly": "old", "grandma": "old_woman", "granny": "old_woman", "grandmother": "old_woman",
    "old lady": "old_woman", "old woman": "old_woman", "grandpa": "old_man", "grandfather": "old_man",
    "old man": "old_man", "老奶奶": "old_woman", "奶奶": "old_woman", "老太太": "old_woman",
    "外婆": "old_woman", "姥姥": "old_woman", "老爷爷": "old_man", "爷爷": "old_man", "老头": "old_man",
    "外公": "old_man", "老人": "old", "老年": "old",
}  # fmt: skip

# subject -> nudges (field -> value), applied only where the field is still open.
SUBJECT_NUDGES: dict[str, dict[str, str]] = {
    "girl": {"facial_hair": "none"},
    "boy": {"hair.style": "short", "facial_hair": "none"},
    "man": {"hair.style": "short"},
    "old": {"hair.color": "silver"},
    "old_woman": {"hair.color": "silver", "hair.style": "bun", "facial_hair": "none"},
    "old_man": {"hair.color": "silver", "hair.style": "short", "facial_hair": "moustache"},
}
SUBJECT_LABELS: dict[str, tuple[str, str]] = {
    "girl": ("girl", "女孩"), "boy": ("boy", "男孩"), "man": ("man", "男人"), "old": ("old", "老人"),
    "old_woman": ("grandma", "老奶奶"), "old_man": ("grandpa", "老爷爷"),
}  # fmt: skip

# Length words: they choose a hair style only when no other hair style is named ("long curly hair" = curly).
LENGTH_WORDS: frozenset[str] = frozenset(
    {"long", "long hair", "长发", "长头发", "short", "short hair", "短发", "短头发"}
)

# When a phrase could mean several things, the first category here wins (unless a part noun decides).
PRIORITY: tuple[str, ...] = (
    "item", "hair_front", "hair_grey", "hair_style", "expression", "outfit", "background", "eye_style",
    "facial_hair", "color", "skin_tone", "face_shape", "brows", "blush", "nose",
)  # fmt: skip
NOUN_CATEGORY: dict[str, str] = {
    "face": "face_shape", "eyes": "eye_style", "brows": "brows", "background": "background",
}  # fmt: skip

# Expression to use when an expression is negated ("not smiling" -> neutral, "not sad" -> smile).
_NEGATIVE_EXPRESSIONS = frozenset({"sad", "crying", "angry", "sleepy"})

# The field each colour target colours.
_COLOR_FIELD = {
    "hair": "hair.color",
    "eyes": "eyes.color",
    "outfit": "outfit.color",
    "background": "background.color",
}
_TARGET_OF_CATEGORY = {
    "hair_style": "hair", "hair_front": "hair", "hair_grey": "hair", "facial_hair": "hair", "eye_style": "eyes", "outfit": "outfit",
    "background": "background", "skin_tone": "skin", "item": "item", "face_shape": "skin",
}  # fmt: skip
# Items that are also a background scene: in a clause that names the background ("flower background",
# "背景是花", "background of flowers") they mean the scene, not the item.
ITEM_SCENES: dict[str, str] = {"flower": "blossoms", "flower_crown": "blossoms"}

# Colours that only ever describe hair, so a bare one is always the hair colour.
_HAIR_COLORS = frozenset({"blonde", "ginger", "platinum", "auburn"})

FIELD_LABELS: dict[str, tuple[str, str]] = {
    "hair.style": ("hair", "发型"), "hair.front": ("fringe", "刘海"), "hair.color": ("hair colour", "发色"),
    "hair.highlight": ("hair highlight", "挑染"), "hair.grey": ("grey in the hair", "白发"), "eyes.color": ("eye colour", "瞳色"),
    "eyes.style": ("eyes", "眼型"), "expression": ("expression", "表情"), "items": ("item", "配饰"),
    "outfit.style": ("outfit", "服装"), "outfit.color": ("outfit colour", "服装颜色"),
    "skin_tone": ("skin tone", "肤色"), "face_shape": ("face shape", "脸型"),
    "facial_hair": ("facial hair", "胡子"), "background.kind": ("background", "背景"),
    "background.color": ("background colour", "背景颜色"), "brows": ("brows", "眉毛"),
    "blush": ("blush", "腮红"), "nose": ("nose", "鼻子"), "archetype": ("archetype", "角色"),
    "subject": ("subject", "人物"),
}  # fmt: skip

_CATEGORY_FIELD = {
    "hair_style": "hair.style", "hair_front": "hair.front", "hair_grey": "hair.grey", "eye_style": "eyes.style", "expression": "expression",
    "outfit": "outfit.style", "background": "background.kind", "skin_tone": "skin_tone",
    "face_shape": "face_shape", "facial_hair": "facial_hair", "brows": "brows", "blush": "blush",
    "nose": "nose", "item": "items", "color": "color",
}  # fmt: skip


# --------------------------------------------------------------------------------------------------------
# Tokens and the lexicon.

_TOKEN_RE = re.compile(
    r"#[0-9a-fA-F]{6}(?![0-9a-zA-Z])|#[0-9a-fA-F]{3}(?![0-9a-zA-Z])"
    r"|:3|w/o"
    r"|[A-Za-z0-9\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]+(?:['’][A-Za-z]+)?"
    r"|[\u3400-\u9fff\uf900-\ufaff]"
    r"|\S"
)
_BREAK_CHARS = frozenset(',.!?;:，。、！？；：()（）[]【】「」『』"“”/|~…·')
_JOINER_CHARS = frozenset("&+")


@dataclass(frozen=True)
class _Token:
    norm: str
    start: int
    end: int
    cjk: bool
    punct: bool


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _tokenise(text: str) -> list[_Token]:
    out = []
    for m in _TOKEN_RE.finditer(text):
        raw = m.group(0)
        norm = unicodedata.normalize("NFKC", raw).lower().replace("’", "'")
        if raw in ("-", "_"):
            continue  # "twin-tails" -> twin tails
        cjk = len(norm) == 1 and _is_cjk(norm)
        punct = norm in _BREAK_CHARS
        out.append(_Token(norm, m.start(), m.end(), cjk, punct))
    return out


def _key(tokens: Sequence[_Token] | Sequence[str]) -> str:
    words = [t if isinstance(t, str) else t.norm for t in tokens]
    out = ""
    for i, w in enumerate(words):
        if i and not (_is_cjk(w[0]) or _is_cjk(words[i - 1][-1])):
            out += " "
        out += w
    return out


def _fold_word(w: str) -> str:
    """A crude English singular: 'ears' -> 'ear', 'bunnies' -> 'bunny'; used only when exact match fails."""
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def _fold(key: str) -> str:
    return " ".join(_fold_word(w) for w in key.split(" "))


def phrase_key(text: str) -> str:
    """The lexicon key of a phrase: 'Twin-Tails' -> 'twin tails', '粉色 双马尾' -> '粉色双马尾'."""
    return _key([t for t in _tokenise(catalog.normalise(text)) if not t.punct])


@dataclass(frozen=True)
class _Sense:
    kind: str  # entry, noun, stop, or, neg, archetype, subject, shade, compound
    category: str = ""  # entry: catalog category; noun: part
    value: str = ""


@dataclass
class _Lexicon:
    exact: dict[str, list[_Sense]]
    folded: dict[str, list[_Sense]]
    max_tokens: int


@cache
def _lexicon() -> _Lexicon:
    exact: dict[str, list[_Sense]] = {}

    def add(word: str, sense: _Sense) -> None:
        key = phrase_key(word)
        if key and sense not in exact.setdefault(key, []):
            exact[key].append(sense)

    for word in COMPOUNDS:
        add(word, _Sense("compound", value=word))
    for arch in ARCHETYPES:
        for w in arch.words:
            add(w, _Sense("archetype", value=arch.id))
    for w, shade in SHADES.items():
        add(w, _Sense("shade", value=shade))
    for cat in PRIORITY:
        for entry in catalog.CATEGORIES[cat]:
            for name in entry.names():
                if cat == "color" and name == entry.id and "_" in entry.id:
                    continue
                add(name, _Sense("entry", cat, entry.id))
    for part, words in PART_NOUNS.items():
        for w in words:
            add(w, _Sense("noun", part))
    for w, subject in SUBJECTS.items():
        add(w, _Sense("subject", value=subject))
    for w in NEGATIONS:
        add(w, _Sense("neg"))
    for w in OR_WORDS:
        add(w, _Sense("or"))
    for w in STOP_WORDS:
        add(w, _Sense("stop"))
    folded: dict[str, list[_Sense]] = {}
    for key, senses in exact.items():
        folded.setdefault(_fold(key), senses)
    max_tokens = max(len(_tokenise(k)) for k in exact)
    return _Lexicon(exact, folded, max_tokens)


@dataclass
class _Unit:
    start: int  # character span in the original text
    end: int
    senses: list[_Sense]  # empty: not understood
    punct: bool = False
    negated: bool = False
    used: bool = False  # consumed as a colour target noun

    def has(self, kind: str, category: str | None = None) -> bool:
        return any(s.kind == kind and (category is None or s.category == category) for s in self.senses)

    def sense(self, kind: str, category: str | None = None) -> _Sense | None:
        for s in self.senses:
            if s.kind == kind and (category is None or s.category == category):
                return s
        return None

    @property
    def kind(self) -> str:
        if self.punct:
            return "break"
        if not self.senses:
            return "unknown"
        return self.senses[0].kind


def _segment(text: str) -> list[_Unit]:
    lex = _lexicon()
    tokens = _tokenise(text)
    units: list[_Unit] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.punct or tok.norm in _JOINER_CHARS:
            units.append(_Unit(tok.start, tok.end, [], punct=tok.punct))
            if not tok.punct:
                units[-1].senses = [_Sense("stop")]
            i += 1
            continue
        if catalog.parse_hex(tok.norm) and tok.norm.startswith("#"):
            units.append(
                _Unit(tok.start, tok.end, [_Sense("entry", "color", catalog.parse_hex(tok.norm) or "")])
            )
            i += 1
            continue
        match: list[_Sense] | None = None
        length = 0
        for n in range(min(lex.max_tokens, len(tokens) - i), 0, -1):
            span = tokens[i : i + n]
            if any(t.punct for t in span):
                continue
            key = _key(span)
            match = lex.exact.get(key) or lex.folded.get(_fold(key))
            if match:
                length = n
                break
        if match:
            units.append(_Unit(tok.start, tokens[i + length - 1].end, list(match)))
            i += length
        else:
            units.append(_Unit(tok.start, tok.end, []))
            i += 1
    return units


# --------------------------------------------------------------------------------------------------------
# Interpretation.


@dataclass
class _State:
    text: str
    fields: dict[str, str] = field(default_factory=dict)  # explicit field values ("hair.color": "#f49ac1")
    understood: list[Understood] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    items: list[tuple[str, str, bool]] = field(default_factory=list)  # (item id, phrase, generic word)
    remove_items: list[tuple[str, str]] = field(default_factory=list)  # (item id or "slot:<slot>", phrase)
    archetypes: list[Archetype] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    lengths: list[tuple[str, str]] = field(default_factory=list)  # (hair style id, phrase)
    negated_fields: dict[str, str] = field(default_factory=dict)  # field -> negated value
    hair_colors: list[str] = field(default_factory=list)
    ignored_spans: list[tuple[int, int]] = field(default_factory=list)
    color_targets: dict[int, int] = field(default_factory=dict)  # target phrase index -> colours on it

    def phrase(self, unit: _Unit, end: _Unit | None = None) -> str:
        return self.text[unit.start : (end or unit).end]

    def set(self, fld: str, value: str, phrase: str, label_value: str | None = None) -> None:
        old = self.fields.get(fld)
        if old is not None and old != value:
            self.notes.append(
                f"{_label(fld, label_value or value)[0]!s} replaced an earlier {FIELD_LABELS[fld][0]}"
            )
        self.fields[fld] = value
        en, zh = _label(fld, label_value or value)
        self.understood.append(Understood(phrase, fld, label_value or value, en, zh))


def _label(fld: str, value: str) -> tuple[str, str]:
    if fld.endswith(".color") or fld == "hair.highlight" or fld == "color":
        entry = catalog.find("color", value)
        if entry:
            return entry.en, entry.zh
        return catalog.color_name(value), value
    if fld == "archetype":
        arch = next(a for a in ARCHETYPES if a.id == value)
        return arch.en, arch.zh
    if fld == "subject":
        return SUBJECT_LABELS.get(value, (value, value))
    cat = next((c for c, f in _CATEGORY_FIELD.items() if f == fld), None)
    if cat:
        entry = catalog.get(cat, value)
        return entry.en, entry.zh
    return value, value


def _color_hex(value: str) -> str:
    return catalog.parse_color(value) or value


def _shade(hex_value: str, shade: str) -> str:
    target = "#1e1a22" if shade == "dark" else "#ffffff"
    a = [int(hex_value[i : i + 2], 16) for i in (1, 3, 5)]
    b = [int(target[i : i + 2], 16) for i in (1, 3, 5)]
    t = 0.35 if shade == "dark" else 0.45
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def _target_of(unit: _Unit) -> str | None:
    """The part a colour next to this unit would colour, or None."""
    noun = unit.sense("noun")
    if noun:
        return "skin" if noun.category == "face" else noun.category
    arch = unit.sense("archetype")
    if arch:
        return "outfit"
    if unit.has("compound"):
        return None
    for s in unit.senses:
        if s.kind == "entry" and s.category in _TARGET_OF_CATEGORY and s.category != "color":
            if s.category == "skin_tone" and unit.has("entry", "color"):
                continue
            return _TARGET_OF_CATEGORY[s.category]
    return None


def _is_color(unit: _Unit) -> bool:
    """A colour phrase: its first meaning is a colour ("brown" is a colour before it is a skin tone)."""
    return bool(unit.senses) and unit.senses[0].kind == "entry" and unit.senses[0].category == "color"


def _interpret(state: _State, units: list[_Unit], edit: bool) -> None:
    sig = [u for u in units if u.kind != "stop"]

    # 1. negation scopes
    i = 0
    while i < len(sig):
        if sig[i].kind == "neg":
            j = i + 1
            while j < len(sig) and sig[j].kind in ("neg", "shade"):
                j += 1
            while j < len(sig) and sig[j].kind not in ("break", "neg", "unknown", "or"):
                sig[j].negated = True
                if j + 2 < len(sig) and sig[j + 1].kind == "or":
                    j += 2
                    continue
                if _is_color(sig[j]) and j + 1 < len(sig) and _target_of(sig[j + 1]):
                    j += 1
                    continue
                break
            i = j
        i += 1

    # 2. colours: find each colour's target, forwards ("pink hair") or backwards ("头发粉色")
    colors = [k for k, u in enumerate(sig) if _is_color(u) and not u.negated and not _hair_only(state, u)]
    fwd: dict[int, int] = {}
    bwd: dict[int, int] = {}
    for k in colors:
        j = k + 1
        skipped_unknown = 0
        while j < len(sig):
            u = sig[j]
            if u.kind == "unknown" and skipped_unknown == 0:
                skipped_unknown += 1
            elif not (_is_color(u) or u.kind == "shade"):
                break
            j += 1
        if j < len(sig) and sig[j].kind != "break" and not sig[j].negated and _target_of(sig[j]):
            fwd[k] = j
        j = k - 1
        while j >= 0 and sig[j].kind == "shade":
            j -= 1
        if j >= 0 and sig[j].kind in ("noun", "entry") and not _is_color(sig[j]) and _target_of(sig[j]):
            bwd[k] = j
    postfix = any(k in bwd and k not in fwd for k in colors) and not any(
        k in fwd and k not in bwd for k in colors
    )
    color_target: dict[int, int | None] = {}
    for k in colors:
        if postfix:
            color_target[k] = bwd.get(k, fwd.get(k))
        else:
            color_target[k] = fwd.get(k, bwd.get(k))

    # 3. walk the phrases in order
    for k, unit in enumerate(sig):
        kind = unit.kind
        phrase = state.phrase(unit)
        if kind == "break" or kind == "or" or kind == "neg":
            continue
        if kind == "unknown":
            _add_ignored(state, units, unit)
            continue
        if unit.negated:
            _negate(state, unit, sig, k, phrase)
            continue
        if kind == "shade":
            nxt = sig[k + 1] if k + 1 < len(sig) else None
            if nxt is not None and _is_color(nxt) and not nxt.negated:
                continue  # applied with the colour
            entry_sense = unit.sense("entry")
            if entry_sense is None:
                state.ignored.append(phrase)
                continue
            unit = _Unit(unit.start, unit.end, [s for s in unit.senses if s.kind == "entry"])
        if k in color_target or (_is_color(unit) and not unit.negated):
            _apply_color(state, sig, k, unit, color_target.get(k))
            continue
        if kind == "noun":
            continue
        if kind == "compound":
            for fld, value in COMPOUNDS[unit.senses[0].value].items():
                state.set(fld, _color_hex(value) if "color" in fld else value, phrase, value)
                if fld == "hair.color":
                    state.hair_colors.append(_color_hex(value))
            continue
        if kind == "archetype":
            arch = next(a for a in ARCHETYPES if a.id == unit.senses[0].value)
            state.archetypes.append(arch)
            state.understood.append(Understood(phrase, "archetype", arch.id, arch.en, arch.zh))
            continue
        if kind == "subject":
            subject = unit.senses[0].value
            state.subjects.append(subject)
            en, zh = SUBJECT_LABELS[subject]
            state.understood.append(Understood(phrase, "subject", subject, en, zh))
            continue
        if kind == "entry":
            sense = _choose(unit, sig[k + 1] if k + 1 < len(sig) else None)
            if (
                sense.category == "item"
                and sense.value in ITEM_SCENES
                and _in_background_clause(state.text, sig, k)
            ):
                sense = _Sense("entry", "background", ITEM_SCENES[sense.value])
            _apply_entry(state, sense, phrase, unit)


def _in_background_clause(text: str, sig: list[_Unit], k: int) -> bool:
    """A background noun ("background", "背景") in the same clause as unit ``k`` (a colon does not end a
    clause: "背景：樱花", "background: flowers")."""
    for step in (-1, 1):
        j = k + step
        while 0 <= j < len(sig) and (
            sig[j].kind != "break" or text[sig[j].start : sig[j].end] in (":", "：")
        ):
            noun = sig[j].sense("noun")
            if noun is not None and noun.category == "background":
                return True
            j += step
    return False


def _add_ignored(state: _State, units: list[_Unit], unit: _Unit) -> None:
    """Touching unknown tokens form one ignored phrase ("dragon tamer", "恐龙")."""
    idx = units.index(unit)
    if idx > 0 and units[idx - 1].kind == "unknown" and state.ignored_spans:
        state.ignored_spans[-1] = (state.ignored_spans[-1][0], unit.end)
        return
    state.ignored_spans.append((unit.start, unit.end))


def _choose(unit: _Unit, nxt: _Unit | None) -> _Sense:
    entries = [s for s in unit.senses if s.kind == "entry"]
    if nxt is not None:
        noun = nxt.sense("noun")
        if noun and noun.category in NOUN_CATEGORY:
            for s in entries:
                if s.category == NOUN_CATEGORY[noun.category]:
                    return s
        if nxt.has("entry", "nose"):
            for s in entries:
                if s.category == "nose":
                    return s
    return entries[0]


def _apply_entry(state: _State, sense: _Sense, phrase: str, unit: _Unit) -> None:
    cat, value = sense.category, sense.value
    if cat == "item":
        key = phrase_key(phrase)
        generic = key in GENERIC_SLOT_WORDS or _fold(key) in GENERIC_SLOT_WORDS
        state.items.append((value, phrase, generic))
        entry = catalog.get("item", value)
        state.understood.append(Understood(phrase, "items", value, entry.en, entry.zh))
        return
    if cat == "hair_style" and phrase_key(phrase) in LENGTH_WORDS | {_fold(w) for w in LENGTH_WORDS}:
        state.lengths.append((value, phrase))
        entry = catalog.get(cat, value)
        state.understood.append(Understood(phrase, "hair.style", value, entry.en, entry.zh))
        return
    if cat == "color":  # a colour phrase reached here only via a shade word's fallback
        return
    if cat == "facial_hair" and "beard" in (value, state.fields.get("facial_hair")) and value != "none":
        # a full beard already has a moustache and stubble: "beard and moustache" (either order) is a beard
        if state.fields.get("facial_hair") not in (None, "none"):
            value = "beard"
            state.fields.pop("facial_hair")  # not a replacement: no note
    state.set(_CATEGORY_FIELD[cat], value, phrase)


def _apply_color(state: _State, sig: list[_Unit], k: int, unit: _Unit, target_idx: int | None) -> None:
    sense = unit.sense("entry", "color")
    assert sense is not None
    hex_value = _color_hex(sense.value)
    color_id = sense.value
    start = unit
    if k > 0 and sig[k - 1].kind == "shade" and not sig[k - 1].negated:
        hex_value = _shade(hex_value, sig[k - 1].senses[0].value)
        color_id = hex_value
        start = sig[k - 1]
    target = _target_of(sig[target_idx]) if target_idx is not None else None
    adjacent = target_idx is not None and target_idx == k + 1 and sig[target_idx].kind == "noun"
    end = sig[target_idx] if adjacent and target_idx is not None else None
    phrase = state.text[
        min(start.start, end.start if end else start.start) : max(unit.end, end.end if end else 0)
    ]
    if target_idx is not None and sig[target_idx].kind == "noun":
        sig[target_idx].used = True
    if target == "skin":
        skin = unit.sense("entry", "skin_tone")
        tone = skin.value if skin else _nearest_skin(hex_value)
        state.set("skin_tone", tone, phrase)
        return
    if target == "item":
        state.notes.append(f"item colours are not supported yet: {phrase!r} ignored")
        state.ignored.append(state.phrase(start, unit))
        return
    if _hair_only(state, unit):
        target = "hair"
    if target is None:
        if "hair.color" not in state.fields or state.hair_colors:
            target = "hair"
        elif "outfit.color" not in state.fields:
            target = "outfit"
        else:
            state.ignored.append(phrase)
            return
    if target_idx is not None:
        state.color_targets[target_idx] = state.color_targets.get(target_idx, 0) + 1
        if target == "hair" and state.color_targets[target_idx] == 2:
            state.set("hair.highlight", hex_value, phrase, color_id)  # "pink and blue hair"
            return
    fld = _COLOR_FIELD[target]
    state.set(fld, hex_value, phrase, color_id)
    if target == "hair":
        state.hair_colors.append(hex_value)


def _hair_only(state: _State, unit: _Unit) -> bool:
    """Colour words that name hair themselves ("金发", "orange hair", "redhead", "blonde")."""
    key = phrase_key(state.phrase(unit))
    return unit.senses[0].value in _HAIR_COLORS or any(w in key for w in ("hair", "发", "head"))


def _nearest_skin(hex_value: str) -> str:
    def lum(h: str) -> float:
        r, g, b = (int(h[i : i + 2], 16) for i in (1, 3, 5))
        return 0.299 * r + 0.587 * g + 0.114 * b

    target = lum(hex_value)
    return min(catalog.SKIN_TONES, key=lambda e: abs(lum(e.hex or "#000000") - target)).id


def _negate(state: _State, unit: _Unit, sig: list[_Unit], k: int, phrase: str) -> None:
    state.removed.append(phrase)
    kind = unit.kind
    if kind == "archetype":
        state.negated_fields[f"archetype:{unit.senses[0].value}"] = unit.senses[0].value
        return
    if kind == "noun" and unit.senses[0].category == "hair":
        state.fields["hair.style"] = "bald"
        state.understood.append(Understood(phrase, "hair.style", "bald", "bald", "光头"))
        return
    if kind != "entry" or _is_color(unit):
        return
    sense = _choose(unit, sig[k + 1] if k + 1 < len(sig) else None)
    cat, value = sense.category, sense.value
    key = phrase_key(phrase)
    if cat == "item":
        slot = GENERIC_SLOT_WORDS.get(key) or GENERIC_SLOT_WORDS.get(_fold(key))
        state.remove_items.append((f"slot:{slot}" if slot else value, phrase))
        return
    fld = _CATEGORY_FIELD[cat]
    if cat == "expression":
        state.negated_fields[fld] = value
        if fld not in state.fields:
            state.set(fld, "smile" if value in _NEGATIVE_EXPRESSIONS else "neutral", phrase)
        return
    replacement = {"hair_front": "open", "facial_hair": "none", "blush": "none", "nose": "none"}.get(cat)
    if replacement and value != replacement:
        state.fields.setdefault(fld, replacement)
        return
    state.negated_fields[fld] = value


# --------------------------------------------------------------------------------------------------------
# Building the spec.

_NESTED = ("hair", "eyes", "outfit", "background")


def _get(spec: AvatarSpec, fld: str) -> Any:
    if "." in fld:
        part, attr = fld.split(".", 1)
        return getattr(getattr(spec, part), attr)
    return getattr(spec, fld)


def _build(state: _State, base: AvatarSpec, edit: bool) -> AvatarSpec:
    values: dict[str, Any] = {}

    def current(fld: str) -> Any:
        return values[fld] if fld in values else _get(base, fld)

    # archetypes: fill what explicit words did not set (later archetypes win over earlier ones)
    arch_items: list[str] = []
    for arch in state.archetypes:
        if f"archetype:{arch.id}" in state.negated_fields:
            continue
        for fld, value in arch.parts.items():
            if fld == "items":
                arch_items.extend(value)
            elif fld not in state.fields:
                values[fld] = _color_hex(value) if fld.endswith("color") else value
        if arch.subject:
            state.subjects.append(arch.subject)
    values.update(state.fields)
    # "grey hair at the temples", "grey salt and pepper hair": the grey field says it; grey is not the colour
    if state.fields.get("hair.grey") and values.get("hair.color") == _color_hex("silver"):
        del values["hair.color"]
    # greying hair is greying from a natural colour: an open hair colour becomes dark brown, not teal
    if state.fields.get("hair.grey") and "hair.color" not in values and current("hair.color") is None:
        values["hair.color"] = _color_hex("dark_brown")

    # hair length words pick a style only when nothing else did
    if state.lengths and "hair.style" not in state.fields:
        values["hair.style"] = state.lengths[-1][0]

    # negated fields: clear a field that holds the negated value
    for fld, value in state.negated_fields.items():
        if fld.startswith("archetype:") or fld in state.fields:
            continue
        if current(fld) == value:
            values[fld] = None

    # gender and age nudges: only where nothing (prompt, archetype, base) decided
    for subject in state.subjects:
        for fld, value in SUBJECT_NUDGES[subject].items():
            if current(fld) is None and fld not in values:
                values[fld] = _color_hex(value) if fld.endswith("color") else value

    # items: base, then archetype items, then negations, then explicit items (later wins)
    spec = base
    changes: dict[str, Any] = {}
    for fld, value in values.items():
        if "." in fld:
            part, attr = fld.split(".", 1)
            changes.setdefault(part, {})[attr] = value
        else:
            changes[fld] = value
    if "hair" in changes and "color" in changes["hair"] and "highlight" not in changes["hair"]:
        changes["hair"]["highlight"] = None
    spec = spec.replace(**changes)

    explicit_slots = {catalog.item_slot(i) for i, _p, generic in state.items if not generic}
    for item in arch_items:
        slot = catalog.item_slot(item)
        if slot in explicit_slots or any(_clashes(item, i) for i, _p, generic in state.items if not generic):
            continue
        spec = spec.with_item(item)
    for what, phrase in state.remove_items:
        if what.startswith("slot:"):
            slot = what.removeprefix("slot:")
            gone = [i for i in spec.items if catalog.item_slot(i) == slot]
        else:
            gone = [what] if what in spec.items else []
        if not gone and edit:
            state.notes.append(f"this avatar has no {phrase}")
        for item in gone:
            spec = spec.without_item(item)
    added: dict[str, str] = {}
    for item, phrase, generic in state.items:
        slot = catalog.item_slot(item)
        if generic and any(catalog.item_slot(i) == slot for i in spec.items):
            continue  # "a witch with a hat" keeps the witch hat
        before = set(spec.items)
        spec = spec.with_item(item)
        for lost in sorted(before - set(spec.items)):
            lost_en = catalog.get("item", lost).en
            new_en = catalog.get("item", item).en
            if lost in added:
                state.notes.append(
                    f"{new_en} replaced {lost_en}: they cannot be worn together, the later one wins"
                )
            else:
                state.notes.append(f"{new_en} replaced {lost_en}")
        added[item] = phrase
    return spec


def _clashes(a: str, b: str) -> bool:
    ea, eb = catalog.get("item", a), catalog.get("item", b)
    if ea.slot == eb.slot and ea.slot not in catalog.MULTI_SLOTS:
        return True
    return bool({eb.id, eb.slot} & set(ea.conflicts) or {ea.id, ea.slot} & set(eb.conflicts))


# --------------------------------------------------------------------------------------------------------
# Public API.


def random_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


def parse_prompt(text: str, *, seed: int | None = None, base: AvatarSpec | None = None) -> ParseResult:
    """Parse a prompt into a spec; fields the prompt does not mention stay open (or as in ``base``)."""
    return _parse(text, seed=seed, base=base, edit=False)


def parse_edit(text: str, spec: AvatarSpec) -> ParseResult:
    """Apply a free-text edit ("add cat ears and make her sad", "去掉眼镜") over ``spec``; same seed."""
    return _parse(text, seed=spec.seed, base=spec, edit=True)


def _parse(text: str, *, seed: int | None, base: AvatarSpec | None, edit: bool) -> ParseResult:
    if not isinstance(text, str):
        raise PromptError("the prompt must be text")
    if len(text) > MAX_PROMPT_CHARS:
        raise PromptError(
            f"the prompt is {len(text)} characters long; the limit is {MAX_PROMPT_CHARS} characters. "
            "Describe the main parts (hair, eyes, outfit, items) more briefly."
        )
    if seed is None:
        seed = base.seed if base is not None else random_seed()
    start = (base or AvatarSpec()).replace(seed=seed)
    state = _State(text)
    if text.strip():
        units = _segment(text)
        _interpret(state, units, edit)
    spec = _build(state, start, edit)
    return ParseResult(
        spec=spec,
        understood=state.understood,
        ignored=[w for w in (text[a:b].strip() for a, b in state.ignored_spans) if w] + state.ignored,
        removed=state.removed,
        notes=list(dict.fromkeys(state.notes)),
    )


def vocabulary() -> Iterable[str]:
    """Every phrase key the parser knows (for docs and benchmarks)."""
    return tuple(_lexicon().exact)
