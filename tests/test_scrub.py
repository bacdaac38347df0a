"""The scrubber that takes a case's personal data out of its texts for exports without personal
data (bot/domain/scrub.py), on texts as citizens and officials write them, in English and Khmer."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.scrub import REMOVED, Scrubber, name_parts, scrub
from bot.inputs import KHMER_DIGITS

R = REMOVED


@pytest.mark.parametrize(("text", "names", "contacts", "expected"), [
    # The issue's own words: the case's name and a phone number.
    ("My name is Sok Dara, call me on +855 12 345 678. The road to the school is flooded.",
     ["Sok Dara"], ["012 345 678"],
     f"My name is {R}, call me on {R}. The road to the school is flooded."),
    ("Hello, I am DARA SOK from Chbar Ampov. Dara's fence was moved.", ["Sok Dara"], [],
     f"Hello, I am {R} from Chbar Ampov. {R}'s fence was moved."),
    ("Mr. Sok Dara asks for help", ["Mr. Sok Dara"], [], f"Mr. {R} asks for help"),  # "Mr" stays
    # Khmer: spaced, unspaced, after "name" and honorifics, with Khmer digits.
    ("ខ្ញុំបាទឈ្មោះ សុខ ដារា ទូរស័ព្ទលេខ ០១២ ៣៤៥ ៦៧៨ សូមជួយដោះស្រាយផ្លូវលិចទឹក។",
     ["សុខ ដារា"], ["012 345 678"],
     f"ខ្ញុំបាទឈ្មោះ {R} ទូរស័ព្ទលេខ {R} សូមជួយដោះស្រាយផ្លូវលិចទឹក។"),
    ("ខ្ញុំឈ្មោះសុខដារា រស់នៅភូមិ១ សុំជួយ", ["សុខ ដារា"], [], f"ខ្ញុំឈ្មោះ{R} រស់នៅភូមិ១ សុំជួយ"),
    ("ឈ្មោះដារាបានមកម្ដងទៀត។ លោកដារា និង លោក ដារា", ["សុខ ដារា"], [],
     f"ឈ្មោះ{R}បានមកម្ដងទៀត។ លោក{R} និង លោក {R}"),
    ("ទូរស័ព្ទ៖០៩៧១២៣៤៥៦៧។", [], [], f"ទូរស័ព្ទ៖{R}។"),
    # A part of a Khmer name inside another word, or another name, stays.
    ("សុខភាពរបស់សុខាល្អ", ["សុខ ដារា"], [], "សុខភាពរបស់សុខាល្អ"),
    # Cambodian phone numbers however people write them.
    ("012 909 808 / 012-909-808 / 012.909.808 / 012909808", [], [], f"{R} / {R} / {R} / {R}"),
    ("mobile 097 1234 567 or 0979 123 456, office 023 123 456", [], [],
     f"mobile {R} or {R}, office {R}"),
    ("+855 (0)12 345 678, (855) 23 123 456, 855-12-345-678, 00855 12 345 678, +85512345678", [], [],
     ", ".join([R] * 5)),
    ("+855 ១២ ៣៤៥ ៦៧៨", [], [], R),
    # Dates, amounts and references are no phone numbers.
    ("On 05-03-2021 (05.03.2021, 2021-03-15, 15/03/2021) he paid 1,000,000 riel, then 10.000.000 "
     "riel; land title 2021-0457; 12 families", [], [],
     "On 05-03-2021 (05.03.2021, 2021-03-15, 15/03/2021) he paid 1,000,000 riel, then 10.000.000 "
     "riel; land title 2021-0457; 12 families"),
    # Without its 0 a number is found only when it is the case's own contact.
    ("call 12 345 678 or 11 222 333", [], ["012 345 678"], f"call {R} or 11 222 333"),
    # E-mail, profile links, usernames.
    ("write to dara.sok@gmail.com or https://www.facebook.com/dara.sok.77, t.me/darasok, @dara_sok",
     [], [], f"write to {R} or {R}, {R}, {R}"),
    ("fb.com/profile.php?id=100012345678901 posted", [], [], f"{R} posted"),
    # A Facebook name as the contact.
    ("Message from Dara Sok Official: the bridge is broken", [], ["Dara Sok Official"],
     f"Message from {R}: the bridge is broken"),
    # A name made of digits is no name: numbers in the text stay.
    ("12 families, 345 metres", ["+855 12 345 678"], [], "12 families, 345 metres"),
    # Formulas and control characters are the export's business, not the scrubber's.
    ('=HYPERLINK("http://x","y") @SUM(1+1)', [], [], '=HYPERLINK("http://x","y") @SUM(1+1)'),
    ("", ["Sok Dara"], ["012 345 678"], ""),
])
def test_realistic_texts(text: str, names: list[str], contacts: list[str], expected: str) -> None:
    assert scrub(text, names, contacts) == expected


def test_other_peoples_names_are_not_known() -> None:
    """The limit README states: only the case's own names are known."""
    text = "Neighbour Chan Thy took the land of Sok Dara"
    assert scrub(text, ["Sok Dara"]) == f"Neighbour Chan Thy took the land of {R}"


def test_name_parts_leave_out_honorifics_initials_and_numbers() -> None:
    assert name_parts("Mr. Sok Dara") == ["Sok", "Dara"]
    assert name_parts("លោកស្រី ចាន់ ធីតា") == ["ចាន់", "ធីតា"]
    assert name_parts("K. Dara") == ["Dara"]
    assert name_parts("+855 12 345 678") == []


def test_finds() -> None:
    s = Scrubber(["Sok Dara"], ["012 345 678"])
    assert s.finds("dara") and s.finds("012345678") and s.finds("097 111 2222")
    assert not s.finds("pp-dp") and not s.finds("in_progress") and not s.finds("2026-13-01")
    assert not s.finds("")


# --- properties ------------------------------------------------------------------------------

DIGITS = st.text("0123456789", min_size=1, max_size=1)
SEPARATORS = st.sampled_from(["", " ", ".", "-"])


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    """A Cambodian number as people write it: 0 and 8 or 9 digits, or +855/00855/855 and the
    number without its 0, groups split by a space, a dot or a dash; now and then in Khmer digits."""
    prefix = draw(st.sampled_from(["0", "+855 ", "+855", "00855 ", "855-", "+855 (0)", "(0"]))
    number = draw(st.sampled_from("123456789")) + "".join(draw(st.lists(DIGITS, min_size=7, max_size=8)))
    sep = draw(SEPARATORS)
    groups = [number[:2], number[2:5], number[5:]] if draw(st.booleans()) else [number[:2], number[2:]]
    text = prefix + sep.join(groups)
    if prefix == "(0":
        text = "(0" + groups[0] + ") " + sep.join(groups[1:])
    if draw(st.booleans()):
        text = text.translate(str.maketrans("0123456789", KHMER_DIGITS))
    return text


WORDS = st.lists(st.sampled_from([
    "the", "road", "is", "flooded", "please", "help", "call", "me", "on", "or", ",", ".", "(", ")",
    "ផ្លូវ", "លិចទឹក", "សូមជួយ", "ទូរស័ព្ទ", "លេខ", "៖", "។", "2026", "12", "families",
]), max_size=6).map(" ".join)


@given(WORDS, phone_numbers(), WORDS, st.sampled_from([" ", "", "៖", ": ", "\n"]))
def test_any_cambodian_phone_number_is_removed(before: str, phone: str, after: str, glue: str) -> None:
    text = before + glue + phone + " " + after
    out = scrub(text)
    digits = re.sub(r"\D", "", phone.translate(str.maketrans(KHMER_DIGITS, "0123456789")))
    assert digits[-8:] not in re.sub(r"\D", "", out.translate(str.maketrans(KHMER_DIGITS, "0123456789")))
    assert R in out


NAMES = st.one_of(  # (family name, given name), in one script
    st.tuples(st.sampled_from(["Sok", "Chan", "Keo", "Meas", "Prak"]),
              st.sampled_from(["Dara", "Sophea", "Lina", "Vuthy", "Sreymom"])),
    st.tuples(st.sampled_from(["សុខ", "ចាន់", "កែវ", "មាស", "ប្រាក់"]),
              st.sampled_from(["ដារា", "សុភា", "លីណា", "វុទ្ធី", "ស្រីមុំ"])),
)


@given(NAMES, WORDS, WORDS, st.sampled_from([" ", "", "\u200b"]),
       st.sampled_from(["", "ឈ្មោះ", "My name is ", "លោក ", "បង"]), st.booleans())
def test_the_citizens_name_is_removed(name: tuple[str, str], before: str, after: str, glue: str,
                                      intro: str, given_only: bool) -> None:
    family, given_name = name
    if family.isascii():
        glue = " "  # "SokDara" is not how a Latin name is written
    written = given_name if given_only else family + glue + given_name
    text = f"{before} {intro}{written} {after}"
    out = scrub(text, [f"{family} {given_name}"])
    assert given_name not in out and (given_only or family not in out)
    assert R in out
