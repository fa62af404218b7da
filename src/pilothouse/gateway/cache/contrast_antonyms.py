"""Opposites: word pairs a word-vector similarity cannot tell from synonyms ("cheap"/"expensive" and
"lend"/"borrow" sit as close as "big"/"large" in MiniLM).

Two sources, both general English: words built as each other's opposite (a negating prefix: "able"/
"unable", "install"/"uninstall"; swapped prefixes or suffixes: "encrypt"/"decrypt", "upload"/"download",
"careful"/"careless", "employer"/"employee", "login"/"logout"), and a list of common opposites written from
general knowledge across everyday, technical, medical, money, travel and work vocabulary. Comparatives and
superlatives of two opposites are opposites too ("thinner"/"thicker"), by their endings.
"""

from __future__ import annotations

from pilothouse.gateway.cache.contrast_morphology import comparative_bases, lemma

_NEGATING = ("un", "in", "im", "il", "ir", "dis", "non", "de", "anti", "mis", "counter", "a", "ab")
_PREFIX_SWAPS = (
    ("en", "de"),
    ("en", "dis"),
    ("in", "ex"),
    ("im", "ex"),
    ("in", "de"),
    ("in", "out"),
    ("up", "down"),
    ("upper", "lower"),
    ("over", "under"),
    ("max", "min"),
    ("pre", "post"),
    ("pro", "anti"),
    ("pro", "con"),
    ("sub", "super"),
    ("micro", "macro"),
    ("hyper", "hypo"),
    ("inter", "intra"),
    ("homo", "hetero"),
    ("mono", "multi"),
    ("mono", "poly"),
    ("uni", "multi"),
    ("uni", "bi"),
    ("under", "over"),
    ("inc", "dec"),
    ("ascend", "descend"),
    ("im", "de"),
    ("ac", "de"),
    ("as", "des"),
    ("ap", "de"),
    ("fore", "after"),
    ("inbound", "outbound"),
    ("on", "off"),
    ("front", "back"),
    ("head", "tail"),
    ("first", "last"),
    ("left", "right"),
)
_SUFFIX_SWAPS = (
    ("ful", "less"),
    ("er", "ee"),
    ("or", "ee"),
    ("in", "out"),
    ("on", "off"),
    ("up", "down"),
    ("start", "end"),
    ("max", "min"),
)
_PAIRS_TEXT = """
big small|large small|huge tiny|long short|tall short|high low|hot cold|warm cold|warm cool|heat cool
fast slow|quick slow|rapid slow|cheap expensive|cheap pricey|inexpensive expensive|affordable expensive
old new|young old|ancient modern|early late|first last|begin end|start end|start stop|start finish
open close|open shut|opened closed|add remove|add delete|add subtract|create delete|create destroy|insert delete
buy sell|purchase sell|rent buy|rent own|lend borrow|loan borrow|give take|give receive|send receive|push pull
win lose|gain lose|gain loss|profit loss|increase reduce|increase lower|raise lower|rise fall|rise drop
up down|left right|top bottom|front back|inside outside|before after|above below|over under|more less
most least|maximum minimum|max min|best worst|better worse|good bad|right wrong|true false|correct wrong
pass fail|success failure|succeed fail|accept reject|allow deny|allow block|allow forbid|allow prevent
approve reject|approve deny|permit forbid|include exclude|import export|enter exit|entrance exit
arrive depart|arrival departure|arrive leave|come go|join leave|login logout|signin signout|connect disconnect
attach detach|lock unlock|show hide|visible hidden|visible invisible|public private|internal external
local remote|online offline|synchronous asynchronous|sync async|static dynamic|strong weak|hard soft
hard easy|difficult easy|simple complex|simple complicated|heavy light|dark light|thick thin|fat thin
wide narrow|deep shallow|wet dry|full empty|rich poor|safe dangerous|safe unsafe|safe risky|healthy unhealthy
positive negative|plus minus|major minor|primary secondary|upper lower|uppercase lowercase|capital lowercase
horizontal vertical|north south|east west|summer winter|spring autumn|day night|morning evening
sunrise sunset|dawn dusk|male female|man woman|men women|boy girl|husband wife|father mother|dad mom
son daughter|brother sister|uncle aunt|nephew niece|king queen|buyer seller|landlord tenant|lender borrower
employer employee|teacher student|parent child|adult child|doctor patient|client server|sender recipient
sender receiver|input output|read write|reader writer|encode decode|encrypt decrypt|compress decompress
zip unzip|freeze thaw|freeze unfreeze|melt freeze|heat cool|sweet sour|sweet bitter|raw cooked|ascending descending
asc desc|forward backward|forwards backwards|next previous|upstream downstream|upgrade downgrade|upload download
overpay underpay|inflation deflation|appreciate depreciate|deposit withdraw|deposit withdrawal|debit credit
asset liability|income expense|income expenditure|revenue expense|save spend|earn spend|saving spending
merge split|join split|combine split|expand collapse|expand shrink|grow shrink|expand contract|zoom unzoom
mute unmute|subscribe unsubscribe|follow unfollow|install uninstall|enable disable|activate deactivate
legal illegal|agree disagree|like dislike|love hate|accept decline|always never|everything nothing
everyone nobody|everybody nobody|ascend descend|inhale exhale|acidic alkaline|acid alkaline|acid base
past future|present absent|pro con|pros cons|advantage disadvantage|benefit drawback|benefit risk|benefit harm
strength weakness|asset debt|lend repay|borrow repay|charge refund|pay refund|payment refund|payer payee
import export|importer exporter|inbound outbound|incoming outgoing|inflow outflow|upstairs downstairs
uphill downhill|upward downward|upwards downwards|upside downside|bull bear|bullish bearish|long short
buy short|overweight underweight|overestimate underestimate|overcook undercook|overflow underflow
majority minority|winner loser|victory defeat|attack defend|offense defense|offensive defensive
guilty innocent|friend enemy|ally enemy|love hatred|happy sad|happiness sadness|happy unhappy|calm anxious
relax stress|awake asleep|sleep wake|asleep awake|alive dead|life death|living dead|birth death|born die
live die|sick healthy|ill well|illness health|disease health|pain relief|hypertension hypotension
hyperthyroidism hypothyroidism|hyperglycemia hypoglycemia|overdose underdose|increase decrease|increment decrement
gain drop|maximize minimize|maximise minimise|ceiling floor|roof floor|clockwise anticlockwise
clockwise counterclockwise|on off|yes no|allowlist blocklist|whitelist blacklist|allowed blocked|allowed banned
include omit|keep remove|keep discard|keep delete|save discard|save delete|store delete|show mask|reveal hide
expose hide|block unblock|ban unban|pin unpin|star unstar|like unlike|archive unarchive|hide unhide|freeze thaw
encrypted plaintext|ciphertext plaintext|lossy lossless|mutable immutable|valid invalid|nullable nonnull
required optional|mandatory optional|explicit implicit|eager lazy|greedy lazy|blocking nonblocking|serial parallel
sequential parallel|concurrent sequential|stateless stateful|frontend backend|client server|host guest|master slave
primary replica|leader follower|parent child|ancestor descendant|prefix suffix|head tail|begin end|header footer
push pop|enqueue dequeue|push shift|load unload|load save|mount unmount|plug unplug|pack unpack|wrap unwrap
serialize deserialize|marshal unmarshal|encode parse|tighten loosen|tight loose|strict lenient|strict loose
before after|prior after|earlier later|earliest latest|sooner later|soonest latest|new used|new second-hand
domestic international|domestic foreign|national international|urban rural|city countryside|inbound outbound
one-way return|one-way round-trip|departure return|outbound return|direct connecting|nonstop connecting
economy business|economy first|window aisle|carry-on checked|checkin checkout|arrival departure|land takeoff
landing takeoff|sunny rainy|dry humid|rainy dry|summer winter|peak off-peak|weekday weekend
full-time part-time|hire fire|employ dismiss|promote demote|promotion demotion|raise cut|bonus penalty
reward punishment|fine reward|senior junior|manager employee|boss employee|resign hire|quit join
retire work|overtime undertime|paid unpaid|salaried hourly|exempt nonexempt|gross net|pretax aftertax
taxable nontaxable|deductible nondeductible|fixed variable|fixed floating|short-term long-term|bid ask
buying selling|inflow outflow|surplus deficit|credit debt|creditor debtor|lender borrower|export import
import export|cathode anode|positive negative|acidic basic|alkaline acidic|absorb emit|expand compress
attract repel|magnetic nonmagnetic|solid liquid|liquid gas|solid gas|freezing boiling|boil freeze
raw cooked|fresh frozen|fresh stale|fresh canned|ripe unripe|sweet savory|hot mild|spicy mild|fried baked
white black|white brown|black white|light dark|bright dim|loud quiet|loud soft|noisy quiet|clean dirty
wet dry|smooth rough|sharp blunt|sharp dull|straight curly|straight curved|round square|even odd
odd even|single double|single married|married divorced|husband ex-husband|with without|for against
pro anti|support oppose|supporter opponent|vegetarian carnivore|vegan omnivore|indoor outdoor|indoors outdoors
inside outside|interior exterior|internal external|inner outer|in out|into out|onto off|entry exit
upload download|uploading downloading|sender receiver|transmit receive|broadcast receive|speaker listener
question answer|ask answer|request response|query result|cause effect|symptom cure|problem solution|win draw
"""


def _pairs() -> frozenset[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for group in _PAIRS_TEXT.replace("\n", "|").split("|"):
        words = group.split()
        if len(words) == 2:
            a, b = lemma(words[0]), lemma(words[1])
            pairs.update({(a, b), (b, a), (words[0], words[1]), (words[1], words[0])})
    return frozenset(pairs)


OPPOSITE_PAIRS = _pairs()


def _affix_opposite(a: str, b: str) -> bool:
    for prefix in _NEGATING:
        if b == prefix + a and len(a) >= 3:
            return True
    for p, q in _PREFIX_SWAPS:
        for x, y in ((a, b), (b, a)):
            if x.startswith(p) and y.startswith(q) and x[len(p) :] == y[len(q) :] and len(x) - len(p) >= 2:
                return True
    for p, q in _SUFFIX_SWAPS:
        for x, y in ((a, b), (b, a)):
            if x.endswith(p) and y.endswith(q) and x[: -len(p)] == y[: -len(q)] and len(x) - len(p) >= 3:
                return True
    return False


def opposite(a: str, b: str) -> bool:
    """`a` and `b` (lower case) are opposites: listed, or built as each other's opposite."""
    if a == b:
        return False
    la, lb = lemma(a), lemma(b)
    if (a, b) in OPPOSITE_PAIRS or (la, lb) in OPPOSITE_PAIRS:
        return True
    if _affix_opposite(a, b) or _affix_opposite(b, a) or _affix_opposite(la, lb) or _affix_opposite(lb, la):
        return True
    # comparatives and superlatives of opposites are opposites ("thinner"/"thicker", "cheapest"/"priciest")
    bases_a, bases_b = comparative_bases(a), comparative_bases(b)
    if bases_a and bases_b:
        return any((x, y) in OPPOSITE_PAIRS for x in bases_a for y in bases_b)
    return False
