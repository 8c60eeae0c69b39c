"""Text for chat messages: Slack escaping and truncation that never splits a character.

Truncation works on code points and backs off over anything that extends the previous
character (combining marks, zero-width joiners, variation selectors, emoji modifiers,
tag characters, the second half of a flag), so an emoji, a ZWJ sequence or an accented
letter is either kept whole or dropped whole; it never cuts an ``&amp;`` entity in two.
"""

from __future__ import annotations

import unicodedata

ELLIPSIS = "…"
ZWJ = "\u200d"


def escape(text: str) -> str:
    """Slack mrkdwn/plain escaping: ``&``, ``<`` and ``>`` only (as Slack documents)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _extends(ch: str) -> bool:
    """True if ``ch`` belongs to the grapheme cluster of the character before it."""
    code = ord(ch)
    return (
        ch == ZWJ
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
        or 0xE0100 <= code <= 0xE01EF  # variation selectors supplement
        or unicodedata.category(ch) in ("Mn", "Mc", "Me")
    )


def _regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def safe_cut(text: str, cut: int) -> int:
    """The largest position <= ``cut`` that does not split a grapheme cluster or entity."""
    cut = max(0, min(cut, len(text)))
    while 0 < cut < len(text) and (_extends(text[cut]) or text[cut - 1] == ZWJ):
        cut -= 1
    if 0 < cut < len(text) and _regional(text[cut - 1]) and _regional(text[cut]):
        run = 0
        while cut - run - 1 >= 0 and _regional(text[cut - run - 1]):
            run += 1
        if run % 2 == 1:  # the cut falls inside a flag (a pair of regional indicators)
            cut -= 1
    amp = text.rfind("&", max(0, cut - 5), cut)
    if amp != -1 and ";" not in text[amp:cut]:
        cut = amp  # inside an entity such as &amp; or &lt;
    return cut


def truncate(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """``text`` cut to at most ``limit`` code points, ending in ``ellipsis`` if cut."""
    if len(text) <= limit:
        return text
    return text[: safe_cut(text, limit - len(ellipsis))] + ellipsis
