"""The fake Bot API's HTML parse mode refuses exactly what Telegram's parser (tdlib's parse_html,
which the Bot API runs) refuses, and the Bot API docs' rule on "&": so a reply that Telegram
would refuse fails in every end-to-end test."""

from __future__ import annotations

import html

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fakebotapi import HTMLParseError, parse_html

B = {"type": "bold", "offset": 0, "length": 1}

ACCEPTED: list[tuple[str, str, list[dict[str, object]]]] = [
    ("plain text", "plain text", []),
    ("a -> b", "a -> b", []),  # a bare ">" is text
    ("<b>x</b>", "x", [B]),
    ("<B>x</B>", "x", [B]),  # tag names are case-insensitive
    ("<strong>x</strong>", "x", [B]),
    ("<b >x</b >", "x", [B]),
    ("<b\n>x</b\t>", "x", [B]),
    ("<b>x</>", "x", [B]),  # "</>" closes the innermost tag
    ("<b data-x=\"1\" other>x</b>", "x", [B]),  # unknown attributes are ignored
    ("<b></b>x", "x", []),  # an empty entity is dropped
    ("<i>a<b>b</b></i>", "ab", [{"type": "italic", "offset": 0, "length": 2},
                               {"type": "bold", "offset": 1, "length": 1}]),
    ("<u>u</u><ins>i</ins><s>s</s><strike>k</strike><del>d</del><em>e</em>", "uiskde", [
        {"type": "underline", "offset": 0, "length": 1}, {"type": "underline", "offset": 1, "length": 1},
        {"type": "strikethrough", "offset": 2, "length": 1},
        {"type": "strikethrough", "offset": 3, "length": 1},
        {"type": "strikethrough", "offset": 4, "length": 1}, {"type": "italic", "offset": 5, "length": 1}]),
    ('<a href="https://e.org/?a=1&amp;b=2">l</a>', "l",
     [{"type": "text_link", "offset": 0, "length": 1, "url": "https://e.org/?a=1&b=2"}]),
    ("<a href='https://e.org/'>l</a>", "l",
     [{"type": "text_link", "offset": 0, "length": 1, "url": "https://e.org/"}]),
    ("<a href=E.org>l</a>", "l",  # a name token: letters, digits, "." and "-", lower-cased
     [{"type": "text_link", "offset": 0, "length": 1, "url": "e.org"}]),
    ('<a href="x" HREF="y">l</a>', "l",  # attribute names are case-sensitive
     [{"type": "text_link", "offset": 0, "length": 1, "url": "x"}]),
    ('<span class="tg-spoiler">s</span>', "s", [{"type": "spoiler", "offset": 0, "length": 1}]),
    ("<span class=TG-SPOILER>s</span>", "s", [{"type": "spoiler", "offset": 0, "length": 1}]),
    ("<tg-spoiler>s</tg-spoiler>", "s", [{"type": "spoiler", "offset": 0, "length": 1}]),
    ('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>', "👍",
     [{"type": "custom_emoji", "offset": 0, "length": 2, "custom_emoji_id": "5368324170671202286"}]),
    ("<code>c</code>", "c", [{"type": "code", "offset": 0, "length": 1}]),
    ('<pre><code class="language-python">p</code></pre>', "p",
     [{"type": "pre", "offset": 0, "length": 1, "language": "python"}]),
    ("<blockquote>q</blockquote>", "q", [{"type": "blockquote", "offset": 0, "length": 1}]),
    ("<blockquote expandable>q</blockquote>", "q",
     [{"type": "expandable_blockquote", "offset": 0, "length": 1}]),
    ("&lt;&gt;&amp;&quot; &#60; &#x3c; &#128512; &#x1F600;", "<>&\" < < 😀 😀", []),
    ("&#0000060;", "<", []),  # seven decimal digits
    ("&#x00003c;", "<", []),  # six hex digits
    ("😀 <b>ж😀</b>", "😀 ж😀", [{"type": "bold", "offset": 3, "length": 3}]),  # UTF-16 units
    ("received &lt;5 · closed 0", "received <5 · closed 0", []),
]

REFUSED: list[tuple[str, str]] = [
    ("received <5 · closed 0", 'Unsupported start tag "5" at byte offset 9'),
    ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
    ("x <", "Unclosed start tag at byte offset 2"),
    ("<br>", 'Unsupported start tag "br"'),
    ("<br/>", 'Unsupported start tag "br/"'),
    ("<b/>x", 'Unsupported start tag "b/"'),
    ("<script>alert(1)</script>", 'Unsupported start tag "script"'),
    ("<b\u00a0>x</b>", 'Unsupported start tag "b\u00a0"'),  # only ASCII spaces end a tag name
    ("<b>unclosed", 'Can\'t find end tag corresponding to start tag "b"'),
    ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
    ("<b>x</b/>", "Unmatched end tag"),
    ("stray </b>", "Unexpected end tag at byte offset 6"),
    ("</>", "Unexpected end tag"),
    ("<b>x</b", "Unclosed end tag"),
    ("<b>x</b x>", "Unclosed end tag"),
    ("<b x", "Unclosed start tag"),
    ('<a href="x>l</a>', "Unclosed start tag"),
    ("<a href=", 'Unclosed start tag "a"'),
    ("<a href=http://e.org>l</a>", "Unexpected end of name token"),
    ("<a =x>l</a>", 'Empty attribute name in the tag "a"'),
    ("<a href=\"x\"/>", 'Empty attribute name in the tag "a"'),
    ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
    ('<span class="spoiler">x</span>', 'Tag "span" must have class "tg-spoiler"'),
    ('<tg-emoji emoji-id="abc">x</tg-emoji>', "Invalid custom emoji identifier specified"),
    ("<tg-emoji>x</tg-emoji>", "Invalid custom emoji identifier specified"),
    # "&" must start a reference, with its ";" (the Bot API docs; tdlib alone is lenient there)
    ("Tom & Jerry", "Character '&' is reserved"),
    ("&nbsp;", "Character '&' is reserved"),
    ("&LT;", "Character '&' is reserved"),
    ("&lt", "Character '&' is reserved"),
    ("&#X41;", "Character '&' is reserved"),  # tdlib reads only a lower-case x
    ("&#0;", "Character '&' is reserved"),
    ("&#1114111;", "Character '&' is reserved"),  # U+10FFFF: tdlib stops below it
    ("&#12345678;", "Character '&' is reserved"),  # eight digits
    ("&#x1234567;", "Character '&' is reserved"),  # seven hex digits
    ("<a href='?a=1&b=2'>l</a>", "Character '&' is reserved"),
    ("&#xD800;", "invalid Unicode characters after decoding HTML entities"),
]


@pytest.mark.parametrize(("text", "plain", "entities"), ACCEPTED)
def test_accepted(text: str, plain: str, entities: list[dict[str, object]]) -> None:
    assert parse_html(text) == (plain, entities)


@pytest.mark.parametrize(("text", "error"), REFUSED)
def test_refused(text: str, error: str) -> None:
    with pytest.raises(HTMLParseError) as refused:
        parse_html(text)
    assert error in str(refused.value)


def test_tdlib_itself_keeps_a_stray_ampersand() -> None:
    """Without the docs' rule, tdlib's own leniency: a "&" that starts no reference is text, and
    a reference needs no ";"."""
    assert parse_html("Tom & Jerry &nbsp; &lt &#60", strict_ampersand=False) == ("Tom & Jerry &nbsp; < <", [])
    with pytest.raises(HTMLParseError, match="Unsupported start tag"):
        parse_html("1 < 2", strict_ampersand=False)


HOSTILE = st.text(st.sampled_from("<>&;#x/=\"' abiuspre-0123456789\n\u00a0") | st.characters(), max_size=60)


@given(st.text(max_size=200))
def test_escaped_text_is_always_accepted_as_it_is(text: str) -> None:
    assert parse_html(html.escape(text)) == (text, [])
    assert parse_html(html.escape(text, quote=False)) == (text, [])
    assert parse_html("<b>" + html.escape(text) + "</b>")[0] == text


@given(HOSTILE, st.booleans())
def test_any_text_is_parsed_or_refused_with_a_parse_error(text: str, strict: bool) -> None:
    try:
        plain, entities = parse_html(text, strict_ampersand=strict)
    except HTMLParseError:
        return
    assert all(e["length"] > 0 for e in entities)
    if "<" not in text and "&" not in text:
        assert (plain, entities) == (text, [])
