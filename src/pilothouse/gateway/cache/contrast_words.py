"""Closed word classes of English for the contrast check (contrast.py).

These are the language, not any data set: the words that carry no answer-changing meaning (articles,
pronouns, auxiliaries of the present tense, most prepositions) and the meaning-bearing closed classes
that must match exactly between two questions (negations, quantifiers, modals, tense markers, degree and
comparison words, direction and relation words, question words, numbers, dates, time frames, units).

`word_class(word)` gives the class of a lower-case word, or None for a content word.
"""

from __future__ import annotations

from types import MappingProxyType


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _canon(text: str) -> MappingProxyType[str, str]:
    """ "each=every some" -> {"each": "every", "some": "some"}: words and their canonical form."""
    pairs = (w.partition("=") for w in text.split())
    return MappingProxyType({word: canon or word for word, _, canon in pairs})


# Carry no meaning that changes the answer: dropped before alignment.
FUNCTION = _words(
    "a an the this that these those there here it its i me my mine you your yours "
    "we us our ours he him his she her hers they them their theirs "
    "one's someone somebody anyone anybody people person u ur "
    "do does doing done is are am be being get gets getting got have has having "
    "of in on at for with by about as via through like "
    "and or but if whether so because then also just really actually basically simply "
    "exactly literally generally usually typically normally probably perhaps maybe possibly please "
    "kindly very quite pretty rather somewhat anyway well ok okay um uh hmm thing things stuff "
    "way ways something anything everything now currently good great nice decent proper helpful useful"
)
# FUNCTION ends with light words a question can add or drop without changing what it asks ("the way to",
# "a good cover letter", "now").
# Head nouns that name the class of the word before them ("capital city", "Python language", "Slack app"):
# after a word that has its counterpart, they add no constraint.
CLASSIFIERS = _words(
    "city town country state language app application program software tool device company service platform "
    "website site system brand product drug medication medicine food dish animal breed framework library "
    "package game movie film book song band item items"
)
NEGATION = _words("not no never without none nobody nothing nowhere neither nor")
QUANTIFIER = _canon(
    "all every=all each=all some any few many much most several both either enough only whole=all "
    "entire=all other another=other else=other same different"
)
MODAL = _canon("can could should ought=should must may might would shall=should")
TENSE = _canon(
    "did=past was=past were=past had=past will=future been=perfect ago=past yet=perfect already=perfect still anymore"
)
DEGREE = _canon(
    "more less fewer=less better worse best worst least than too enough most max min maximum=max "
    "minimum=min highest lowest cheapest fastest"
)
RELATION = _canon(
    # "the difference between X and Y" asks "X vs Y"
    "out off up down before after between=vs vs versus=vs per over under above below instead against "
    "until till=until since within during inside outside across behind beyond except besides=except "
    "alongside=with while next last final=last previous=last past=last prior=before upcoming=next "
    "following=next early late again"
)
# "replace the brake pads myself": doing it oneself is a constraint ("by myself", "on my own" are not dropped)
REFLEXIVE = _canon(
    "myself=self yourself=self yourselves=self ourselves=self himself=self herself=self themselves=self "
    "itself=self oneself=self"
)
QUESTION = _canon("how what which=what why when where who whom=who whose")

UNITS_ONES = MappingProxyType(
    {
        "zero": 0,
        "one": 1,
        "two": 2,
        "three": 3,
        "four": 4,
        "five": 5,
        "six": 6,
        "seven": 7,
        "eight": 8,
        "nine": 9,
        "ten": 10,
        "eleven": 11,
        "twelve": 12,
        "thirteen": 13,
        "fourteen": 14,
        "fifteen": 15,
        "sixteen": 16,
        "seventeen": 17,
        "eighteen": 18,
        "nineteen": 19,
        "dozen": 12,
        "half": 0.5,
        "once": 1,
        "twice": 2,
        "thrice": 3,
    }
)
TENS = MappingProxyType(
    {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
)
SCALES = MappingProxyType(
    {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12, "k": 1000}
)
ORDINALS = MappingProxyType(
    {
        "first": 1,
        "second": 2,
        "third": 3,
        "fourth": 4,
        "fifth": 5,
        "sixth": 6,
        "seventh": 7,
        "eighth": 8,
        "ninth": 9,
        "tenth": 10,
        "eleventh": 11,
        "twelfth": 12,
        "twentieth": 20,
        "thirtieth": 30,
        "hundredth": 100,
    }
)
MONTHS = MappingProxyType(
    {
        name: str(i + 1)
        for i, names in enumerate(
            [
                "january jan",
                "february feb",
                "march",
                "april apr",
                "may",
                "june jun",
                "july jul",
                "august aug",
                "september sep sept",
                "october oct",
                "november nov",
                "december",
            ]
        )
        for name in names.split()
    }
)
WEEKDAYS = MappingProxyType(
    {
        name: day
        for day, names in {
            "mon": "monday mon",
            "tue": "tuesday tue tues",
            "wed": "wednesday",
            "thu": "thursday thu thur thurs",
            "fri": "friday fri",
            "sat": "saturday",
            "sun": "sunday",
        }.items()
        for name in names.split()
    }
)
DAY_WORDS = _words(
    "today tonight tomorrow yesterday weekend weekday weekdays weekends holiday holidays "
    "spring summer autumn winter morning afternoon evening midnight noon overnight"
)
# Lengths of time: "per day" and "per week" ask different things; "daily" is "per day".
TIME_FRAMES = _canon(
    "nanosecond=ns millisecond=ms ms second sec=second secs=second minute hour hr=hour hrs=hour day week "
    "wk=week fortnight night month quarter semester year yr=year decade century lifetime"
)
ADVERB_FRAMES = _canon(
    "hourly=hour daily=day nightly=night weekly=week biweekly=fortnight fortnightly=fortnight "
    "monthly=month quarterly=quarter yearly=year annual=year annually=year"
)
# Units and currencies, to one canonical name each.
UNITS = MappingProxyType(
    {
        name: unit
        for unit, names in {
            "mm": "mm millimeter millimetre millimeters millimetres",
            "cm": "cm centimeter centimetre centimeters centimetres",
            "m": "meter metre meters metres",
            "km": "km kilometer kilometre kilometers kilometres kms",
            "in": "inch inches",
            "ft": "ft foot feet",
            "yd": "yd yard yards",
            "mi": "mile miles",
            "nmi": "nautical",
            "mg": "mg milligram milligrams",
            "mcg": "mcg microgram micrograms µg",
            "g": "gram grams gramme",
            "kg": "kg kilogram kilograms kilo kilos",
            "lb": "lb lbs pound pounds",
            "oz": "oz ounce ounces",
            "t": "ton tons tonne tonnes",
            "ml": "ml milliliter millilitre milliliters millilitres",
            "l": "liter litre liters litres",
            "gal": "gal gallon gallons",
            "pt": "pint pints",
            "qt": "quart quarts",
            "cup": "cup cups",
            "tbsp": "tbsp tablespoon tablespoons",
            "tsp": "tsp teaspoon teaspoons",
            "c": "celsius centigrade °c",
            "f": "fahrenheit °f",
            "k_temp": "kelvin",
            "%": "% percent percentage pct",
            "b": "byte bytes",
            "bit": "bit bits",
            "kb": "kb kilobyte kilobytes kib",
            "mb": "mb megabyte megabytes mib",
            "gb": "gb gigabyte gigabytes gib gigs",
            "tb": "tb terabyte terabytes tib",
            "mbps": "mbps",
            "gbps": "gbps",
            "hz": "hz hertz",
            "khz": "khz",
            "mhz": "mhz",
            "ghz": "ghz",
            "w": "watt watts",
            "kw": "kw kilowatt kilowatts",
            "kwh": "kwh",
            "v": "volt volts",
            "a": "amp amps ampere amperes",
            "mah": "mah",
            "kcal": "kcal calorie calories cal",
            "kj": "kj kilojoule kilojoules",
            "iu": "iu",
            "mph": "mph",
            "kph": "kph km/h kmh",
            "psi": "psi",
            "dpi": "dpi",
            "px": "px pixel pixels",
            "acre": "acre acres",
            "hectare": "hectare hectares",
            "usd": "usd dollar dollars $ buck bucks",
            "eur": "eur euro euros €",
            "gbp": "gbp £ sterling quid",
            "jpy": "jpy yen ¥",
            "cny": "cny yuan rmb",
            "inr": "inr rupee rupees",
            "cad": "cad",
            "aud": "aud",
            "chf": "chf franc francs",
            "mxn": "mxn peso pesos",
            "btc": "btc bitcoin bitcoins",
            "cent": "cent cents",
            "degree": "degree degrees °",
        }.items()
        for name in names.split()
    }
)

# Numbers after a number only ("5 m", "2 g").
AFTER_NUMBER = MappingProxyType(
    {
        "m": "m",
        "g": "g",
        "l": "l",
        "c": "c",
        "f": "f",
        "w": "w",
        "v": "v",
        "h": "hour",
        "s": "second",
        "min": "minute",
        "mins": "minute",
    }
)


def _table() -> dict[str, tuple[str, str]]:
    table: dict[str, tuple[str, str]] = {w: ("function", w) for w in FUNCTION}
    for name, words in (
        ("relation", RELATION),
        ("quantifier", QUANTIFIER),
        ("degree", DEGREE),
        ("tense", TENSE),
        ("modal", MODAL),
        ("question", QUESTION),
        ("reflexive", REFLEXIVE),
    ):  # later classes win
        table.update({w: (name, canon) for w, canon in words.items()})
    table.update({w: ("negation", w) for w in NEGATION})
    return table


CLOSED_CLASS = MappingProxyType(_table())


def word_class(word: str) -> tuple[str, str] | None:
    """(class, canonical form) of a closed-class word ("function" for one that carries nothing), or None for
    a content word. Numbers, dates, time frames and units are found by contrast_normalise, in context."""
    return CLOSED_CLASS.get(word)
