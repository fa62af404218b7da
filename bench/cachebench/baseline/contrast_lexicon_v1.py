# Frozen copy of the contrast check before issue 11 (commit a41caae), kept only as the side-by-side
# baseline in benchmarks; do not edit.
"""Word lists for the semantic cache's contrast checks (contrast.py).

General English, written from the kinds of difference that flip a question's meaning, not from any test
set: negations, pairs of opposites, number words, dates and times, units, and the words that start a
question or a request (so a capitalised first word is not taken for a name).
"""

from __future__ import annotations


def _forms(*stems: str) -> frozenset[str]:
    return frozenset(stems)


def words(text: str) -> frozenset[str]:
    """The whitespace-separated words of `text`."""
    return frozenset(text.split())


def _table(text: str) -> dict[str, str]:
    """`word=value` pairs separated by whitespace."""
    return dict(item.split("=", 1) for item in text.split())


def _numbers(text: str) -> dict[str, float]:
    return {word: float(value) for word, value in _table(text).items()}


NEGATIONS = words(
    """
    aint arent cannot cant couldnt didnt doesnt dont except excluding hadnt hasnt havent isnt mustnt neednt
    neither never no nobody none nor not nothing nowhere shouldnt wasnt werent without wont wouldnt
    """
)


# Axes of opposites: (one pole, the other pole). Phrases are matched as word sequences.
OPPOSITES: tuple[tuple[frozenset[str], frozenset[str]], ...] = (
    (
        _forms(
            "enable",
            "enabled",
            "enables",
            "enabling",
            "activate",
            "activated",
            "activates",
            "activating",
            "turn on",
            "turned on",
            "turning on",
            "switch on",
            "switched on",
            "power on",
        ),
        _forms(
            "disable",
            "disabled",
            "disables",
            "disabling",
            "deactivate",
            "deactivated",
            "deactivates",
            "deactivating",
            "turn off",
            "turned off",
            "turning off",
            "switch off",
            "switched off",
            "power off",
            "shut off",
            "off",
        ),
    ),
    (
        _forms("start", "starts", "started", "starting", "begin", "begins", "launch", "launches", "resume", "resumes"),
        _forms(
            "stop",
            "stops",
            "stopped",
            "stopping",
            "halt",
            "halts",
            "terminate",
            "terminates",
            "kill",
            "pause",
            "pauses",
            "paused",
            "quit",
        ),
    ),
    (
        _forms(
            "add",
            "adds",
            "added",
            "adding",
            "insert",
            "inserts",
            "include",
            "includes",
            "including",
            "attach",
            "append",
            "create",
            "creates",
            "install",
            "installs",
            "subscribe",
            "invite",
            "invites",
        ),
        _forms(
            "remove",
            "removes",
            "removed",
            "removing",
            "delete",
            "deletes",
            "deleted",
            "deleting",
            "exclude",
            "excludes",
            "excluding",
            "detach",
            "erase",
            "uninstall",
            "uninstalls",
            "unsubscribe",
            "drop",
            "drops",
        ),
    ),
    (
        _forms(
            "increase",
            "increases",
            "increased",
            "increasing",
            "raise",
            "raises",
            "grow",
            "enlarge",
            "expand",
            "more",
            "higher",
            "highest",
            "bigger",
            "biggest",
            "larger",
            "largest",
            "greater",
            "greatest",
        ),
        _forms(
            "decrease",
            "decreases",
            "decreased",
            "decreasing",
            "reduce",
            "reduces",
            "reduced",
            "lower",
            "lowest",
            "shrink",
            "less",
            "fewer",
            "smaller",
            "smallest",
            "least",
        ),
    ),
    (_forms("maximum", "max", "maximize", "maximise", "most"), _forms("minimum", "minimize", "minimise", "least")),
    (_forms("upgrade", "upgrades", "upgrading"), _forms("downgrade", "downgrades", "downgrading")),
    (
        _forms("upload", "uploads", "uploading", "uploaded"),
        _forms("download", "downloads", "downloading", "downloaded"),
    ),
    (_forms("import", "imports", "importing", "imported"), _forms("export", "exports", "exporting", "exported")),
    (_forms("push", "pushes", "pushing"), _forms("pull", "pulls", "pulling")),
    (
        _forms("send", "sends", "sending", "sent", "outgoing", "outbound"),
        _forms("receive", "receives", "receiving", "received", "incoming", "inbound"),
    ),
    (_forms("buy", "buys", "buying", "purchase", "purchasing"), _forms("sell", "sells", "selling", "sold")),
    (_forms("win", "wins", "winning", "won"), _forms("lose", "loses", "losing", "lost")),
    (
        _forms("show", "shows", "showing", "display", "unhide", "reveal", "visible"),
        _forms("hide", "hides", "hiding", "hidden", "conceal", "invisible"),
    ),
    (_forms("open", "opens", "opening", "opened"), _forms("close", "closes", "closing", "closed", "shut")),
    (
        _forms(
            "allow",
            "allows",
            "allowed",
            "allowing",
            "permit",
            "permitted",
            "accept",
            "accepts",
            "approve",
            "approves",
            "grant",
            "whitelist",
            "allowlist",
        ),
        _forms(
            "block",
            "blocks",
            "blocked",
            "blocking",
            "deny",
            "denies",
            "denied",
            "reject",
            "rejects",
            "forbid",
            "forbidden",
            "ban",
            "banned",
            "blacklist",
            "blocklist",
            "prevent",
            "disallow",
            "revoke",
        ),
    ),
    (_forms("ascending", "asc", "increasing"), _forms("descending", "desc", "decreasing")),
    (_forms("first", "earliest", "oldest"), _forms("last", "latest", "newest")),
    (_forms("before", "prior", "earlier"), _forms("after", "later", "afterwards")),
    (_forms("above", "over"), _forms("below", "under", "beneath")),
    (_forms("inside", "internal", "interior"), _forms("outside", "external", "exterior")),
    (_forms("best", "better"), _forms("worst", "worse")),
    (_forms("fast", "faster", "fastest", "quick", "quicker", "quickest"), _forms("slow", "slower", "slowest")),
    (
        _forms("cheap", "cheaper", "cheapest", "inexpensive", "affordable"),
        _forms("expensive", "costly", "costlier", "costliest", "pricey", "priciest"),
    ),
    (_forms("easy", "easier", "easiest", "simple", "simplest"), _forms("hard", "harder", "hardest", "difficult")),
    (
        _forms("hot", "hotter", "hottest", "warm", "warmer", "warmest", "heat"),
        _forms("cold", "colder", "coldest", "cool", "cooler", "coolest", "cool down"),
    ),
    (_forms("positive"), _forms("negative")),
    (
        _forms("pros", "benefits", "benefit", "advantages", "advantage", "upsides", "upside"),
        _forms(
            "cons",
            "risks",
            "risk",
            "drawbacks",
            "drawback",
            "disadvantages",
            "disadvantage",
            "downsides",
            "downside",
            "dangers",
        ),
    ),
    (_forms("public"), _forms("private")),
    (_forms("input", "inputs"), _forms("output", "outputs")),
    (_forms("read", "reads", "reading"), _forms("write", "writes", "writing")),
    (_forms("true"), _forms("false")),
    (_forms("light"), _forms("dark")),
    (_forms("left"), _forms("right")),
    (_forms("north", "northern"), _forms("south", "southern")),
    (_forms("east", "eastern"), _forms("west", "western")),
    (_forms("male", "men", "man", "boy", "boys"), _forms("female", "women", "woman", "girl", "girls")),
    (_forms("day", "daytime"), _forms("night", "nighttime")),
    (_forms("long", "longer", "longest"), _forms("short", "shorter", "shortest")),
    (_forms("big", "large", "huge"), _forms("small", "little", "tiny")),
    (_forms("old", "older"), _forms("new", "newer", "young", "younger", "youngest")),
    (_forms("heavy", "heavier", "heaviest"), _forms("lightweight", "lighter", "lightest")),
    (
        _forms("success", "successful", "succeed", "succeeds", "pass", "passes", "passing", "passed"),
        _forms("failure", "failed", "fail", "fails", "failing"),
    ),
    (_forms("correct", "right"), _forms("incorrect", "wrong")),
    (_forms("safe", "safely", "safety"), _forms("unsafe", "dangerous", "harmful", "toxic", "poisonous")),
    (_forms("love", "loves", "like", "likes"), _forms("hate", "hates", "dislike", "dislikes")),
    (_forms("agree", "agrees"), _forms("disagree", "disagrees")),
    (
        _forms(
            "zoom in",
            "scroll up",
            "move up",
            "round up",
            "speed up",
            "log in",
            "login",
            "sign in",
            "signin",
            "check in",
            "opt in",
            "plug in",
        ),
        _forms(
            "zoom out",
            "scroll down",
            "move down",
            "round down",
            "slow down",
            "log out",
            "logout",
            "sign out",
            "signout",
            "check out",
            "opt out",
            "unplug",
        ),
    ),
    (
        _forms("encrypt", "encrypted", "encryption", "encode", "encoding", "compress", "compression"),
        _forms("decrypt", "decrypted", "decryption", "decode", "decoding", "decompress", "decompression"),
    ),
    (
        _forms("lock", "locked", "mute", "muted", "pin", "pinned", "follow", "archive", "block"),
        _forms("unlock", "unlocked", "unmute", "unmuted", "unpin", "unpinned", "unfollow", "unarchive", "unblock"),
    ),
    (
        _forms("connect", "connected", "connecting", "connection", "online"),
        _forms("disconnect", "disconnected", "disconnecting", "offline"),
    ),
    (_forms("benign", "good"), _forms("malignant", "bad", "evil")),
)

# Word-building opposites: a word and the same word with one of these prefixes ("install", "uninstall").
NEGATING_PREFIXES = ("un", "dis", "de", "in", "im", "il", "ir", "non", "non-", "anti", "mis")
# Prefix swaps: ("encrypt", "decrypt"), ("include", "exclude"), ("increase", "decrease"), ...
SWAPPED_PREFIXES = (
    ("en", "de"),
    ("en", "dis"),
    ("in", "ex"),
    ("im", "ex"),
    ("inc", "dec"),
    ("up", "down"),
    ("over", "under"),
    ("pre", "post"),
    ("in", "out"),
    ("max", "min"),
    ("a", "de"),
)

UNITS_ONES = _numbers(
    """
    zero=0 one=1 two=2 three=3 four=4 five=5 six=6 seven=7 eight=8 nine=9 ten=10 eleven=11 twelve=12 thirteen=13
    fourteen=14 fifteen=15 sixteen=16 seventeen=17 eighteen=18 nineteen=19 dozen=12 twice=2 double=2 triple=3
    half=0.5 quarter=0.25 couple=2
    """
)
TENS = _numbers(
    """
    twenty=20 thirty=30 forty=40 fifty=50 sixty=60 seventy=70 eighty=80 ninety=90
    """
)
SCALES = _numbers(
    """
    hundred=100 thousand=1000 million=1000000 billion=1000000000 trillion=1000000000000
    """
)
ORDINALS = _numbers(
    """
    first=1 second=2 third=3 fourth=4 fifth=5 sixth=6 seventh=7 eighth=8 ninth=9 tenth=10 eleventh=11 twelfth=12
    thirteenth=13 fourteenth=14 fifteenth=15 sixteenth=16 seventeenth=17 eighteenth=18 nineteenth=19
    twentieth=20 thirtieth=30 fortieth=40 fiftieth=50 hundredth=100 thousandth=1000 millionth=1000000
    """
)

MONTHS = _table(
    """
    january=jan jan=jan february=feb feb=feb march=mar april=apr apr=apr may=may june=jun jun=jun july=jul
    jul=jul august=aug aug=aug september=sep sep=sep sept=sep october=oct oct=oct november=nov nov=nov
    december=dec dec=dec
    """
)
WEEKDAYS = _table(
    """
    monday=mon tuesday=tue tues=tue wednesday=wed thursday=thu thurs=thu friday=fri saturday=sat sunday=sun
    weekday=weekday weekdays=weekday weekend=weekend weekends=weekend
    """
)
DAY_WORDS = words(
    """
    a.m afternoon am annual annually autumn christmas currently daily easter evening h1 h2 halloween hourly
    midnight monthly morning noon now overnight p.m pm q1 q2 q3 q4 quarterly summer thanksgiving today tomorrow
    tonight weekly winter yearly yesterday
    """
)
RELATIVE = words(
    """
    coming current following last next past previous this upcoming
    """
)
PERIODS = words(
    """
    century day decade hour month quarter season week weekend year
    """
)

# Unit words -> canonical unit. AFTER_NUMBER ones count only right after a number ("5 m", "10 s").
UNITS = _table(
    """
    km=km kms=km kilometer=km kilometers=km kilometre=km kilometres=km mile=mi miles=mi meter=m meters=m metre=m
    metres=m cm=cm centimeter=cm centimeters=cm mm=mm millimeter=mm millimeters=mm foot=ft feet=ft ft=ft inch=in
    inches=in yard=yd yards=yd kg=kg kgs=kg kilogram=kg kilograms=kg kilo=kg kilos=kg gram=g grams=g mg=mg
    milligram=mg milligrams=mg lb=lb lbs=lb pound=lb pounds=lb ounce=oz ounces=oz oz=oz ton=t tons=t tonne=t
    tonnes=t liter=l liters=l litre=l litres=l ml=ml milliliter=ml milliliters=ml gallon=gal gallons=gal pint=pt
    pints=pt quart=qt quarts=qt cup=cup cups=cup tablespoon=tbsp tablespoons=tbsp tbsp=tbsp teaspoon=tsp
    teaspoons=tsp tsp=tsp celsius=degc centigrade=degc fahrenheit=degf kelvin=kelvin usd=usd dollar=usd
    dollars=usd $=usd eur=eur euro=eur euros=eur €=eur gbp=gbp sterling=gbp £=gbp jpy=jpy yen=jpy ¥=jpy cad=cad
    aud=aud chf=chf inr=inr rupees=inr cny=cny yuan=cny btc=btc %=pct percent=pct percentage=pct pct=pct byte=b
    bytes=b kb=kb kilobyte=kb kilobytes=kb mb=mb megabyte=mb megabytes=mb gb=gb gigabyte=gb gigabytes=gb tb=tb
    terabyte=tb terabytes=tb kib=kib mib=mib gib=gib tib=tib bit=bit bits=bit mbps=mbps gbps=gbps kbps=kbps
    ms=ms millisecond=ms milliseconds=ms seconds=s secs=s minutes=min mins=min hours=h hrs=h days=d weeks=wk
    months=mo years=yr decades=decade centuries=century mph=mph kph=kph kmh=kph knots=knot watt=w watts=w kw=kw
    kwh=kwh volt=v volts=v amp=a amps=a hz=hz mhz=mhz ghz=ghz calorie=kcal calories=kcal kcal=kcal joule=j
    joules=j acre=acre acres=acre hectare=ha hectares=ha psi=psi bar=bar pixel=px pixels=px px=px tokens=token
    """
)
AFTER_NUMBER = _table(
    """
    m=m g=g l=l s=s sec=s second=s min=min minute=min h=h hr=h hour=h day=d d=d week=wk month=mo year=yr k=k
    c=degc f=degf token=token
    """
)

# Words that start questions and requests: a capitalised first word among these is not a name.
STARTERS = words(
    """
    a about above according actually add after again all also although always am an analyse analyze and another
    answer any anyone anything are as ask assume at based be because before being best between both brainstorm build
    but by calculate can cancel change check choose classify clean come compare compose compute consider continue
    convert correct could count create critique debug define delete describe design determine did do does draft draw
    during each edit either else estimate even every evaluate exactly explain export extract fill find finish fix
    follow for format from generate get give given go good great had has have having he hello help her here hey hi
    his how however i if imagine implement import improve in include is it its just keep kindly let lets list look
    make many may maybe me might mine more most much must my name need next no not now of ok okay on once one only
    open or order other our outline paraphrase pick plan please point predict prepare print proofread provide put
    quick quickly rank rate read really recommend refactor remind remove rephrase reply respond rewrite run say
    schedule search see select send set several should show simplify since sketch so solve some someone something
    sometimes sort still suggest summarise summarize suppose take teach tell thank thanks that the their them then
    there these they think this those though to today translate try turn under understand until update use using
    validate verify very was we were what whats when where whether which while who whom whose why will with within
    without would write yes yet you your
    """
)
