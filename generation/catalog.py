"""The catalog: every value an :class:`~generation.spec.AvatarSpec` may hold, with English and Chinese names.

Each category is a tuple of :class:`Entry`. Ids are stable (they are stored in the database inside specs);
names and synonyms are what people type, in English or simplified Chinese. ``chibify catalog`` prints this.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One allowed value: a stable id, display names and the words people use for it."""

    id: str
    en: str
    zh: str
    synonyms: tuple[str, ...] = ()
    slot: str | None = None  # items only: where it sits
    hex: str | None = None  # colours and skin tones
    tags: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = field(default=())  # items or slots this item cannot be worn with

    def names(self) -> tuple[str, ...]:
        """Every spelling that refers to this entry (id, names, synonyms), normalised."""
        words = (self.id, self.id.replace("_", " "), self.en, self.zh, *self.synonyms)
        return tuple(dict.fromkeys(normalise(w) for w in words if w))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "en": self.en, "zh": self.zh, "synonyms": list(self.synonyms)}
        if self.slot:
            out["slot"] = self.slot
        if self.hex:
            out["hex"] = self.hex
        if self.tags:
            out["tags"] = list(self.tags)
        if self.conflicts:
            out["conflicts"] = list(self.conflicts)
        return out


def normalise(text: str) -> str:
    """Lower-case, collapse spaces, hyphens and underscores: 'Twin-Tails' -> 'twin tails'."""
    return re.sub(r"[\s_\-]+", " ", text.strip().lower())


HAIR_STYLES: tuple[Entry, ...] = (
    Entry(
        "short",
        "short hair",
        "短发",
        ("short", "pixie", "pixie cut", "crop", "cropped hair", "short cut", "boyish", "短头发", "短发型"),
    ),
    Entry("bob", "bob cut", "波波头", ("bob", "bob hair", "波波", "鲍勃头", "齐耳短发")),
    Entry("hime", "hime cut", "姬发式", ("hime", "princess cut", "姬发", "公主切")),
    Entry(
        "long_straight",
        "long straight hair",
        "长直发",
        ("long hair", "straight hair", "long", "长发", "直发", "黑长直"),
    ),
    Entry(
        "long_wavy", "long wavy hair", "长卷发", ("wavy hair", "wavy", "waves", "大波浪", "波浪发", "波浪卷")
    ),
    Entry(
        "twin_tails", "twin tails", "双马尾", ("twintails", "pigtails", "twin tail", "two ponytails", "双马")
    ),
    Entry("ponytail", "ponytail", "马尾", ("pony tail", "high ponytail", "单马尾", "马尾辫")),
    Entry("bun", "bun", "丸子头", ("hair bun", "top bun", "buns", "odango", "space buns", "发髻", "包子头")),
    Entry(
        "spiky",
        "spiky hair",
        "刺猬头",
        ("spiky", "spikes", "anime hair", "mohawk", "faux hawk", "炸毛", "刺头", "莫西干"),
    ),
    Entry(
        "side_swept",
        "side-swept hair",
        "侧分发",
        ("side swept", "side part", "swept", "undercut", "侧分", "斜刘海"),
    ),
    Entry(
        "curly",
        "curly hair",
        "卷发",
        (
            "curly",
            "curls",
            "coily",
            "coils",
            "ringlets",
            "kinky",
            "kinky hair",
            "tight curls",
            "frizzy",
            "frizzy hair",
            "4c hair",
            "小卷发",
            "自然卷",
            "羊毛卷",
        ),
    ),
    Entry(
        "afro",
        "afro",
        "爆炸头",
        ("afro hair", "fro", "afro puffs", "high top", "high top fade", "非洲爆炸头", "蓬蓬头"),
    ),
    Entry(
        "braids",
        "braids",
        "辫子",
        (
            "braid",
            "box braids",
            "braided",
            "plaits",
            "dreadlocks",
            "dreads",
            "locs",
            "cornrows",
            "麻花辫",
            "编发",
            "脏辫",
            "辫子头",
        ),
    ),
    Entry(
        "buzz",
        "buzz cut",
        "寸头",
        (
            "buzz",
            "buzzcut",
            "crew cut",
            "shaved",
            "skin fade",
            "low fade",
            "fade haircut",
            "平头",
            "板寸",
            "圆寸",
        ),
    ),
    Entry("bald", "bald", "光头", ("no hair", "bald head", "shaved head", "秃头", "没有头发")),
    Entry("messy", "messy hair", "凌乱发", ("messy", "bedhead", "tousled", "乱发", "蓬乱")),
)

# Grey in otherwise coloured hair (None in the spec = no grey). The photo analysis sets these ids too.
HAIR_GREY: tuple[Entry, ...] = (
    Entry(
        "temples",
        "grey at the temples",
        "两鬓斑白",
        (
            "grey temples", "gray temples", "greying temples", "graying temples", "silver temples",
            "grey at the temples", "gray at the temples", "grey sideburns", "gray sideburns", "temples",
            "两鬓花白", "鬓角花白", "鬓角斑白", "两鬓白", "鬓角白", "白鬓角", "鬓白",
        ),
    ),
    Entry(
        "salt_pepper",
        "salt-and-pepper hair",
        "花白头发",
        (
            "salt and pepper", "salt and pepper hair", "salt n pepper", "greying", "graying", "greying hair",
            "graying hair", "going grey", "going gray", "grey streaks", "gray streaks", "grey strands",
            "gray strands", "silver streaks", "peppered grey", "花白", "斑白", "头发花白", "花白发",
            "黑白相间", "灰白头发", "灰白发", "头发灰白", "半白", "夹白",
        ),
    ),
)  # fmt: skip

HAIR_FRONTS: tuple[Entry, ...] = (
    Entry("bangs", "straight bangs", "齐刘海", ("bangs", "fringe", "blunt bangs", "刘海")),
    Entry("swept", "swept fringe", "斜刘海", ("swept bangs", "side bangs", "side fringe", "偏分刘海")),
    Entry("parted", "middle part", "中分", ("middle parted", "center part", "中分刘海")),
    Entry("wispy", "wispy bangs", "空气刘海", ("air bangs", "see-through bangs", "thin bangs")),
    Entry("open", "no bangs", "无刘海", ("forehead", "slicked back", "背头", "露额头")),
)

EXPRESSIONS: tuple[Entry, ...] = (
    Entry("smile", "smile", "微笑", ("smiling", "happy", "cheerful", "笑", "开心", "高兴")),
    Entry("grin", "grin", "咧嘴笑", ("big smile", "grinning", "toothy smile", "露齿笑")),
    Entry("laugh", "laughing", "大笑", ("laugh", "lol", "joyful", "哈哈", "开怀大笑")),
    Entry("neutral", "neutral", "平静", ("calm", "expressionless", "straight face", "面无表情", "淡定")),
    Entry("wink", "wink", "眨眼", ("winking", "wink face", "抛媚眼", "单眼")),
    Entry("sleepy", "sleepy", "困倦", ("tired", "drowsy", "sleeping", "困", "想睡", "睡眼惺忪")),
    Entry("surprised", "surprised", "惊讶", ("shocked", "amazed", "wow", "吃惊", "震惊")),
    Entry("angry", "angry", "生气", ("mad", "grumpy", "furious", "pouting", "愤怒", "气鼓鼓")),
    Entry("sad", "sad", "难过", ("unhappy", "gloomy", "depressed", "伤心", "悲伤")),
    Entry("crying", "crying", "哭泣", ("tears", "teary", "cry", "哭", "流泪", "泪目")),
    Entry(
        "shy",
        "shy",
        "害羞",
        (
            "blushing",
            "embarrassed",
            "bashful",
            "timid",
            "coy",
            "shy smile",
            "bashful smile",
            "shy face",
            "害羞的笑",
            "害羞地笑",
            "羞涩地笑",
            "羞涩的笑",
            "害羞微笑",
            "脸红",
            "羞涩",
            "腼腆",
            "害臊",
            "羞羞",
            "娇羞",
        ),
    ),
    Entry("smirk", "smirk", "坏笑", ("smug", "sly", "smirking", "得意", "邪魅一笑")),
    Entry("cat_mouth", "cat mouth ω", "猫咪嘴", ("ω", "cat smile", ":3", "uwu", "猫嘴", "w嘴")),
    Entry("tongue_out", "tongue out", "吐舌头", ("tongue", "bleh", "teasing", "吐舌", "略略略")),
    Entry("love", "in love", "爱心眼", ("heart eyes", "lovestruck", "love", "花痴", "心心眼")),
    Entry("determined", "determined", "坚定", ("serious", "focused", "confident", "认真", "自信")),
)

EYE_STYLES: tuple[Entry, ...] = (
    Entry("round", "round eyes", "圆眼", ("big eyes", "round", "大眼睛", "圆圆的眼睛")),
    Entry(
        "sparkle",
        "sparkly eyes",
        "闪亮眼",
        ("sparkling eyes", "shiny eyes", "starry eyes", "sparkly", "星星眼", "闪闪", "闪亮"),
    ),
    Entry("gentle", "gentle eyes", "温柔眼", ("soft eyes", "kind eyes", "温柔")),
    Entry(
        "sharp",
        "sharp eyes",
        "凤眼",
        ("cat eyes", "narrow eyes", "cool eyes", "almond eyes", "丹凤眼", "猫眼"),
    ),
    Entry("droopy", "droopy eyes", "下垂眼", ("puppy eyes", "tareme", "狗狗眼")),
    Entry("dot", "dot eyes", "豆豆眼", ("dot", "bean eyes", "simple eyes", "豆豆")),
)

BROWS: tuple[Entry, ...] = (
    Entry("soft", "soft brows", "柔和眉", ("soft", "natural brows", "自然眉")),
    Entry("straight", "straight brows", "平眉", ("straight", "一字眉")),
    Entry("thick", "thick brows", "浓眉", ("bushy brows", "thick eyebrows", "粗眉")),
    Entry("thin", "thin brows", "细眉", ("thin eyebrows", "arched brows", "柳叶眉")),
)

NOSES: tuple[Entry, ...] = (
    Entry("none", "no nose", "无鼻子", ("no nose",)),
    Entry("dot", "dot nose", "点鼻", ("tiny nose", "button nose", "小鼻子")),
    Entry("small", "small nose", "小巧鼻", ("nose", "small nose line", "鼻子")),
)

FACE_SHAPES: tuple[Entry, ...] = (
    Entry("round", "round face", "圆脸", ("round", "chubby", "baby face", "包子脸", "肉肉脸")),
    Entry("oval", "oval face", "鹅蛋脸", ("oval",)),
    Entry("heart", "heart-shaped face", "瓜子脸", ("heart", "pointed chin", "v face", "v脸", "尖下巴")),
    Entry("square", "square face", "方脸", ("square", "strong jaw", "国字脸")),
    Entry("long", "long face", "长脸", ("long", "narrow face", "窄脸")),
)

BLUSH: tuple[Entry, ...] = (
    Entry("none", "no blush", "无腮红", ("no blush",)),
    Entry("soft", "soft blush", "淡腮红", ("blush", "rosy cheeks", "腮红", "红脸蛋")),
    Entry("strong", "strong blush", "浓腮红", ("heavy blush", "very rosy", "大腮红")),
)

# From very light to very deep. Hex values are the mid-tone of the skin; the renderer derives shade and light.
SKIN_TONES: tuple[Entry, ...] = (
    Entry(
        "porcelain", "porcelain", "瓷白", ("very light", "very pale", "very fair", "非常白"), hex="#fdeee4"
    ),
    Entry("ivory", "ivory", "象牙白", ("pale", "pale skin", "白皙", "白皮肤"), hex="#fbe0cd"),
    Entry("fair", "fair", "白净", ("light skin", "fair skin", "白"), hex="#f5d0b5"),
    Entry("light", "light", "浅肤色", ("light tan", "peach", "浅色皮肤"), hex="#ecbf9b"),
    Entry("beige", "beige", "自然肤色", ("light medium", "medium light", "natural", "自然"), hex="#deaa82"),
    Entry("tan", "tan", "小麦色", ("medium", "tanned", "olive", "wheat", "健康肤色"), hex="#c9915f"),
    Entry("caramel", "caramel", "焦糖色", ("medium brown", "light brown skin", "焦糖"), hex="#b17849"),
    Entry("brown", "brown", "棕色皮肤", ("brown skin", "dark", "深肤色"), hex="#8f5a35"),
    Entry("deep", "deep", "深棕色", ("dark skin", "dark brown", "deep brown", "深色皮肤"), hex="#6e4227"),
    Entry("ebony", "ebony", "乌木色", ("very dark", "very deep", "deepest", "黝黑", "黑皮肤"), hex="#4f2e1c"),
)

FACIAL_HAIR: tuple[Entry, ...] = (
    Entry("none", "clean-shaven", "无胡子", ("no beard", "clean shaven", "shaved face")),
    Entry(
        "stubble",
        "stubble",
        "胡茬",
        ("five o'clock shadow", "scruff", "胡渣", "胡茬子", "青胡茬", "胡子拉碴"),
    ),
    Entry(
        "moustache",
        "moustache",
        "八字胡",
        ("mustache", "mustache only", "moustache only", "小胡子", "八字胡子", "唇上胡子", "一字胡"),
    ),
    Entry(
        "beard",
        "beard",
        "络腮胡",
        ("full beard", "bearded", "whiskers", "大胡子", "胡子", "胡须", "络腮胡子", "长胡子"),
    ),
    Entry("goatee", "goatee", "山羊胡", ("chin beard", "小山羊胡", "山羊胡子", "山羊须")),
)

ITEM_SLOTS: dict[str, str] = {
    "head_top": "hats and crowns, on top of the head",
    "ears": "animal ears and horns",
    "hair_accessory": "bows, flowers and clips in the hair",
    "headphones": "headphones over the ears",
    "eyes": "glasses and eyepatches",
    "mouth": "covers the mouth",
    "face": "marks on the face (several allowed)",
    "ear_jewelry": "earrings",
    "neck": "scarves, ties and necklaces",
    "head_wrap": "covers the hair and ears",
    "back": "wings behind the shoulders",
    "held": "something held up in front",
}
# Slots that may hold several items at once; every other slot holds one.
MULTI_SLOTS: frozenset[str] = frozenset({"face"})

ITEMS: tuple[Entry, ...] = (
    Entry("beanie", "beanie", "毛线帽", ("knit hat", "wool hat", "toque", "针织帽"), slot="head_top"),
    Entry(
        "witch_hat", "witch hat", "女巫帽", ("wizard hat", "pointy hat", "巫师帽", "魔法帽"), slot="head_top"
    ),
    Entry("beret", "beret", "贝雷帽", ("painter hat", "画家帽"), slot="head_top"),
    Entry("crown", "crown", "皇冠", ("tiara", "royal crown", "王冠", "小皇冠"), slot="head_top"),
    Entry("cap", "cap", "棒球帽", ("baseball cap", "hat", "snapback", "鸭舌帽", "帽子"), slot="head_top"),
    Entry("straw_hat", "straw hat", "草帽", ("sun hat", "遮阳帽"), slot="head_top"),
    Entry("top_hat", "top hat", "礼帽", ("magician hat", "高礼帽", "魔术师帽"), slot="head_top"),
    Entry("bandana", "bandana", "头巾", ("headband", "head scarf", "发带"), slot="head_top"),
    Entry("santa_hat", "santa hat", "圣诞帽", ("christmas hat", "xmas hat"), slot="head_top"),
    Entry("halo", "halo", "光环", ("angel halo", "天使光环", "光圈"), slot="head_top"),
    Entry(
        "flower_crown",
        "flower crown",
        "花环",
        (
            "floral crown",
            "flower wreath",
            "floral wreath",
            "wreath",
            "garland",
            "daisy crown",
            "花冠",
            "花圈",
            "花朵头环",
            "花头环",
            "花环头饰",
        ),
        slot="head_top",
    ),
    Entry("cat_ears", "cat ears", "猫耳", ("cat ear", "nekomimi", "kitty ears", "猫耳朵"), slot="ears"),
    Entry("fox_ears", "fox ears", "狐狸耳", ("fox ear", "kitsune ears", "狐耳"), slot="ears"),
    Entry(
        "bunny_ears", "bunny ears", "兔耳", ("rabbit ears", "bunny ear", "兔耳朵", "兔子耳朵"), slot="ears"
    ),
    Entry("bear_ears", "bear ears", "熊耳", ("teddy ears", "bear ear", "熊耳朵"), slot="ears"),
    Entry("horns", "horns", "角", ("devil horns", "demon horns", "恶魔角", "小角", "犄角"), slot="ears"),
    Entry(
        "elf_ears",
        "elf ears",
        "精灵耳",
        (
            "pointy ears",
            "pointed ears",
            "elven ears",
            "elf ear",
            "elfin ears",
            "fairy ears",
            "精灵耳朵",
            "尖耳朵",
            "尖耳",
            "尖尖的耳朵",
        ),
        slot="ears",
        conflicts=("headphones",),
    ),
    Entry("bow", "hair bow", "蝴蝶结", ("bow", "ribbon", "发带蝴蝶结", "丝带"), slot="hair_accessory"),
    Entry(
        "flower",
        "flower",
        "花朵发饰",
        ("hair flower", "flower in hair", "花", "小花", "发花", "樱花发饰", "樱花发夹"),
        slot="hair_accessory",
    ),
    Entry("hair_clip", "hair clip", "发夹", ("hairpin", "barrette", "clip", "发卡"), slot="hair_accessory"),
    Entry("headphones", "headphones", "耳机", ("headset", "earphones", "头戴耳机"), slot="headphones"),
    Entry(
        "round_glasses", "round glasses", "圆框眼镜", ("glasses", "spectacles", "眼镜", "圆眼镜"), slot="eyes"
    ),
    Entry(
        "square_glasses",
        "square glasses",
        "方框眼镜",
        ("nerd glasses", "rectangular glasses", "方眼镜"),
        slot="eyes",
    ),
    Entry("sunglasses", "sunglasses", "墨镜", ("shades", "sunnies", "太阳镜"), slot="eyes"),
    Entry("eyepatch", "eyepatch", "眼罩", ("eye patch", "pirate patch", "单眼罩"), slot="eyes"),
    Entry("face_mask", "face mask", "口罩", ("mask", "surgical mask", "医用口罩"), slot="mouth"),
    Entry("freckles", "freckles", "雀斑", ("freckle", "小雀斑"), slot="face"),
    Entry("fangs", "fangs", "小虎牙", ("fang", "vampire fangs", "tooth", "虎牙", "獠牙"), slot="face"),
    Entry("bandage", "bandage", "创可贴", ("band-aid", "bandaid", "plaster", "邦迪"), slot="face"),
    Entry("beauty_mark", "beauty mark", "泪痣", ("mole", "beauty spot", "痣"), slot="face"),
    Entry("earrings", "earrings", "耳环", ("earring", "ear studs", "耳坠", "耳钉"), slot="ear_jewelry"),
    Entry("scarf", "scarf", "围巾", ("muffler", "围脖"), slot="neck"),
    Entry("bow_tie", "bow tie", "领结", ("bowtie", "蝴蝶领结"), slot="neck"),
    Entry("necklace", "necklace", "项链", ("pendant", "choker", "颈链", "项圈"), slot="neck"),
    Entry(
        "hijab",
        "hijab",
        "头巾（希贾布）",
        ("headscarf", "veil", "希贾布", "盖头", "穆斯林头巾"),
        slot="head_wrap",
        conflicts=("ears", "hair_accessory", "ear_jewelry", "bandana"),
    ),
    Entry(
        "angel_wings",
        "small angel wings",
        "天使翅膀",
        ("wings", "angel wings", "feather wings", "翅膀", "小翅膀"),
        slot="back",
    ),
    Entry(
        "bat_wings", "small bat wings", "蝙蝠翅膀", ("devil wings", "demon wings", "恶魔翅膀"), slot="back"
    ),
    Entry("magic_wand", "magic wand", "魔法棒", ("wand", "star wand", "魔杖", "仙女棒"), slot="held"),
    Entry("boba_tea", "bubble tea", "珍珠奶茶", ("boba", "milk tea", "奶茶"), slot="held"),
)

OUTFITS: tuple[Entry, ...] = (
    Entry("tshirt", "t-shirt", "T恤", ("tee", "t shirt", "shirt", "短袖", "t恤")),
    Entry("hoodie", "hoodie", "卫衣", ("hooded sweatshirt", "sweatshirt", "连帽衫", "帽衫")),
    Entry("sweater", "sweater", "毛衣", ("jumper", "knit sweater", "cardigan", "针织衫")),
    Entry(
        "sailor", "sailor uniform", "水手服", ("seifuku", "sailor suit", "school uniform", "校服", "jk制服")
    ),
    Entry("blazer", "school blazer", "西装校服", ("blazer", "student uniform", "学生制服", "学院风")),
    Entry("suit", "suit and tie", "西装", ("suit", "business suit", "tuxedo", "正装", "西服")),
    Entry("kimono", "kimono", "和服", ("yukata", "浴衣", "汉服", "hanfu")),
    Entry("dress", "dress", "连衣裙", ("frilly dress", "lolita dress", "gown", "裙子", "洋装")),
    Entry("armor", "armor", "盔甲", ("armour", "knight armor", "plate armor", "铠甲", "骑士盔甲")),
    Entry("spacesuit", "space suit", "宇航服", ("spacesuit", "astronaut suit", "太空服")),
    Entry("cape", "high-collared cape", "斗篷", ("cloak", "vampire cape", "披风")),
    Entry("robe", "wizard robe", "法师袍", ("witch robe", "mage robe", "robe", "长袍", "魔法袍")),
)

BACKGROUNDS: tuple[Entry, ...] = (
    Entry("solid", "solid colour", "纯色", ("plain", "solid", "plain background", "纯色背景")),
    Entry(
        "gradient",
        "gradient",
        "渐变",
        ("gradient background", "fade", "sky", "天空", "渐变背景"),
    ),
    Entry("dots", "polka dots", "波点", ("dots", "dotted", "polka dot", "圆点")),
    Entry("stripes", "stripes", "条纹", ("striped", "stripe", "条纹背景")),
    Entry(
        "stars",
        "stars",
        "星星",
        (
            "starry",
            "sparkles",
            "starry sky",
            "star",
            "star background",
            "night sky",
            "galaxy",
            "星空",
            "星星背景",
            "夜空",
            "moon",
            "moon and stars",
            "crescent moon",
            "月亮",
            "星月",
            "银河",
        ),
    ),
    Entry(
        "hearts",
        "hearts",
        "爱心",
        ("heart pattern", "love hearts", "heart", "heart background", "心形", "爱心背景"),
    ),
    Entry(
        "blossoms",
        "cherry blossoms",
        "樱花",
        (
            "blossoms",
            "blossom",
            "cherry blossom",
            "sakura",
            "sakura petals",
            "petals",
            "falling petals",
            "flower petals",
            "floral",
            "floral background",
            "flower background",
            "flowers background",
            "blossom background",
            "sakura background",
            "樱花背景",
            "樱花瓣",
            "花瓣",
            "花背景",
            "花海",
            "落樱",
            "樱花雨",
            "cherry tree",
            "cherry blossom tree",
            "樱花树",
            "桜",
        ),
    ),
)

# Named colours (any colour is also accepted as #rgb / #rrggbb).
COLORS: tuple[Entry, ...] = (
    Entry(
        "black", "black", "黑色", ("jet black", "raven", "raven black", "黑", "乌黑", "乌黑色"), hex="#2b2630"
    ),
    Entry(
        "dark_brown",
        "dark brown",
        "深棕色",
        ("chocolate", "espresso", "深棕", "深褐色", "巧克力色", "深咖啡色"),
        hex="#4a3128",
    ),
    Entry(
        "brown",
        "brown",
        "棕色",
        ("chestnut", "brunette", "棕", "褐色", "咖啡色", "栗色", "栗子色", "棕褐色"),
        hex="#7a4e34",
    ),
    Entry(
        "light_brown",
        "light brown",
        "浅棕色",
        ("caramel", "hazel", "浅棕", "茶色", "奶茶色", "亚麻色", "浅褐色"),
        hex="#a8764f",
    ),
    Entry("auburn", "auburn", "红棕色", ("copper", "红棕"), hex="#9a4a2c"),
    Entry("ginger", "ginger", "姜黄色", ("orange hair", "redhead", "橘红色"), hex="#d8723a"),
    Entry(
        "blonde",
        "blonde",
        "金色",
        ("blond", "golden", "gold", "honey blonde", "金", "金发", "金黄色", "金黄"),
        hex="#f2cf6f",
    ),
    Entry("platinum", "platinum blonde", "铂金色", ("platinum", "白金色", "铂金"), hex="#f1e7c9"),
    Entry("rose_gold", "rose gold", "玫瑰金", ("rose gold pink", "玫瑰金色"), hex="#e7ad9e"),
    Entry(
        "silver",
        "silver",
        "银色",
        ("grey", "gray", "silver grey", "ash grey", "银", "灰色", "银灰色", "白发", "银白色", "银白", "灰"),
        hex="#c3c7d1",
    ),
    Entry("white", "white", "白色", ("snow white", "白", "雪白", "雪白色", "纯白", "纯白色"), hex="#f7f6f2"),
    Entry("red", "red", "红色", ("crimson", "scarlet", "红"), hex="#d94452"),
    Entry("pink", "pink", "粉色", ("pink", "粉红", "粉", "粉红色"), hex="#f49ac1"),
    Entry(
        "hot_pink",
        "hot pink",
        "玫红色",
        ("magenta", "fuchsia", "rose", "玫红", "桃红色", "玫瑰色", "玫瑰红"),
        hex="#e8508f",
    ),
    Entry(
        "pastel_pink",
        "pastel pink",
        "浅粉色",
        ("baby pink", "light pink", "sakura pink", "樱花粉", "浅粉", "樱花色", "樱粉色"),
        hex="#f9c9dc",
    ),
    Entry("peach", "peach", "蜜桃色", ("apricot", "strawberry blonde", "桃色", "杏色"), hex="#ffbf9b"),
    Entry("orange", "orange", "橙色", ("tangerine", "橙", "橘色", "橘黄色", "橙黄色"), hex="#f39a3d"),
    Entry("yellow", "yellow", "黄色", ("lemon", "黄"), hex="#f7d84a"),
    Entry(
        "cream", "cream", "奶油色", ("beige", "ivory", "米色", "奶白色", "乳白色", "米白色"), hex="#f5ead0"
    ),
    Entry("mint", "mint", "薄荷绿", ("mint green", "薄荷色"), hex="#a6e3c8"),
    Entry("green", "green", "绿色", ("emerald", "绿"), hex="#4caf6e"),
    Entry("dark_green", "dark green", "墨绿色", ("forest green", "olive green", "墨绿"), hex="#2f5d46"),
    Entry("teal", "teal", "青色", ("turquoise", "cyan", "aqua", "青", "蓝绿色"), hex="#3fb6b2"),
    Entry("sky_blue", "sky blue", "天蓝色", ("light blue", "baby blue", "天蓝", "浅蓝色"), hex="#8cc8f0"),
    Entry("blue", "blue", "蓝色", ("蓝",), hex="#4a7fd9"),
    Entry("navy", "navy", "藏青色", ("navy blue", "dark blue", "深蓝色", "藏蓝"), hex="#2c3b6b"),
    Entry(
        "lavender",
        "lavender",
        "薰衣草紫",
        (
            "lilac",
            "light purple",
            "pastel purple",
            "lavender purple",
            "淡紫色",
            "浅紫色",
            "薰衣草色",
            "薰衣草",
            "薰衣草紫色",
            "丁香紫",
            "粉紫色",
            "粉紫",
            "香芋紫",
            "香芋色",
            "丁香色",
            "淡紫",
            "浅紫",
        ),
        hex="#c7b3ec",
    ),
    Entry(
        "purple",
        "purple",
        "紫色",
        ("violet", "indigo", "blue violet", "紫", "紫罗兰色", "葡萄紫", "蓝紫色", "蓝紫"),
        hex="#8a5cc7",
    ),
    Entry("plum", "plum", "梅子色", ("wine", "burgundy", "酒红色", "酒红"), hex="#7d2e4f"),
    Entry("grey_blue", "grey blue", "灰蓝色", ("slate", "steel blue", "灰蓝", "雾霾蓝"), hex="#7088a3"),
    Entry("charcoal", "charcoal", "炭灰色", ("dark grey", "dark gray", "深灰色", "深灰"), hex="#4b4f58"),
)

CATEGORIES: dict[str, tuple[Entry, ...]] = {
    "hair_style": HAIR_STYLES,
    "hair_front": HAIR_FRONTS,
    "hair_grey": HAIR_GREY,
    "expression": EXPRESSIONS,
    "eye_style": EYE_STYLES,
    "brows": BROWS,
    "nose": NOSES,
    "face_shape": FACE_SHAPES,
    "blush": BLUSH,
    "skin_tone": SKIN_TONES,
    "facial_hair": FACIAL_HAIR,
    "item": ITEMS,
    "outfit": OUTFITS,
    "background": BACKGROUNDS,
    "color": COLORS,
}

_BY_ID: dict[str, dict[str, Entry]] = {cat: {e.id: e for e in entries} for cat, entries in CATEGORIES.items()}
_BY_NAME: dict[str, dict[str, Entry]] = {}
for _cat, _entries in CATEGORIES.items():
    _names: dict[str, Entry] = {}
    for _e in _entries:
        for _n in _e.names():
            _names.setdefault(_n, _e)
    _BY_NAME[_cat] = _names

_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def ids(category: str) -> tuple[str, ...]:
    """The allowed ids of a category, in catalog order."""
    return tuple(_BY_ID[category])


def get(category: str, entry_id: str) -> Entry:
    """The entry with this id; KeyError with a readable message if there is none."""
    try:
        return _BY_ID[category][entry_id]
    except KeyError:
        raise KeyError(f"unknown {category.replace('_', ' ')} {entry_id!r}") from None


def find(category: str, text: str) -> Entry | None:
    """The entry whose id, name or synonym is exactly ``text`` (case and spacing ignored), or None."""
    return _BY_NAME[category].get(normalise(text))


def item_slot(item_id: str) -> str:
    slot = get("item", item_id).slot
    assert slot is not None
    return slot


def parse_hex(text: str) -> str | None:
    """'#F9c' / 'ff99cc' -> '#ff99cc'; None when it is not a hex colour."""
    m = _HEX.match(text.strip())
    if not m:
        return None
    h = m.group(1).lower()
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return "#" + h


def parse_color(text: str) -> str | None:
    """A colour name (English or Chinese) or hex code -> '#rrggbb', or None if it is neither."""
    hex_value = parse_hex(text)
    if hex_value:
        return hex_value
    entry = find("color", text)
    return entry.hex if entry else None


def color_name(hex_value: str) -> str:
    """The catalog colour nearest to a hex value (for captions and prompts)."""
    target = _rgb(hex_value)
    best = min(
        COLORS, key=lambda e: sum((a - b) ** 2 for a, b in zip(_rgb(e.hex or "#000000"), target, strict=True))
    )
    return best.en


def _rgb(hex_value: str) -> tuple[int, int, int]:
    h = hex_value.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def to_json(categories: Iterable[str] | None = None) -> dict[str, Any]:
    """The catalog as plain JSON (``chibify catalog --json``)."""
    cats = list(categories) if categories is not None else list(CATEGORIES)
    out: dict[str, Any] = {cat: [e.to_json() for e in CATEGORIES[cat]] for cat in cats}
    out["item_slots"] = dict(ITEM_SLOTS)
    return out
