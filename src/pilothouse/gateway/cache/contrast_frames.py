"""Request frames of English, rewritten to one form before two questions are compared.

A question comes wrapped in greetings, thanks and request frames ("hey, could you tell me ...", "I was
wondering if ...", "quick question: ..."), and the same ask has several question frames ("how do I",
"how can I", "what is the best way to", "what are the steps to"). These rules are a small grammar of
such frames, written from English, not from any pair set: each is a regular expression over the lower-case
words, and each numbered group in it is replaced by a template (`\\N` back-references allowed); the words
outside the groups are kept. Phrasal verbs with a meaning of their own become one word ("turn off" ->
"disable", "log in" -> "login"), and "a day" / "every day" become "per day".
"""

from __future__ import annotations

import re
from dataclasses import replace

from pilothouse.gateway.cache.contrast_morphology import verb_form
from pilothouse.gateway.cache.contrast_normalise import Token
from pilothouse.gateway.cache.contrast_words import word_class

_SUBJ = r"(?:i|we|you|u|one|someone|somebody|anyone|anybody|people|a person|a user|users)"
_ASKER = r"(?:you|u|someone|somebody|anyone|anybody|somebody here|anyone here)"
_MODAL = r"(?:do|does|can|could|should|would|will|might|may|shall|must)"
_WH = r"(?:what|how|why|when|where|who|which|whether|if)"
_TIMEFRAME = r"(?:second|minute|hour|day|night|week|fortnight|month|quarter|year|decade)"
_ADJ_WAY = (
    r"(?:best|right|correct|proper|recommended|easiest|simplest|quickest|fastest|standard|usual|preferred|"
    r"good|typical|common|official|safest|proper|recommended)"
)
_WAY = r"(?:way|ways|method|methods|steps|procedure|process|approach|instructions|options?|means|commands?|syntax)"
_VERB_ON = r"(?:turn|turns|turned|turning|switch|switches|switched|switching|toggle|toggles|toggled|toggling)"

_RULES_TEXT: tuple[tuple[str, tuple[str, ...]], ...] = (
    # greetings, apologies, "quick question"
    (r"^((?:hi|hello|hey|hiya|greetings|yo|howdy)(?: there| team| all| everyone| guys| folks| friend)?)", ("",)),
    (r"^(good (?:morning|afternoon|evening|day)(?: there| team| all| everyone)?)", ("",)),
    (
        r"^((?:sorry|apologies)(?: to bother you| for (?:the|a|this) \w+ question| if this is (?:a )?\w+ question)?)",
        ("",),
    ),
    (r"^(excuse me)", ("",)),
    (
        r"^((?:i have |i have got |i got |got |here is |just )?(?:a |one )?(?:quick |simple |short |small |silly |"
        r"dumb |stupid |basic |general |random |beginner |newbie |noob )?questions?(?: for you| here)?"
        r"(?: about| regarding| on)?)(?= \w)",
        ("",),
    ),
    (
        r"((?:a |one )?(?:quick|simple|short|small|silly|dumb|stupid|basic|random|beginner|newbie|noob) question"
        r"(?: for you| here)?)",
        ("",),
    ),
    # thanks, please, "if you can"
    (
        r"((?:thanks|thank you|thank u|thx|ty|cheers|many thanks|much appreciated|appreciate it|"
        r"i (?:would )?appreciate (?:it|any help|your help|the help|any advice))(?: (?:so|very) much| a lot| a ton|"
        r" in advance| again)*(?: for (?:your|the|any) (?:help|time|answer|assistance|advice))?)",
        ("",),
    ),
    (r"((?:please|pls|plz|kindly))", ("",)),
    (r"((?:if|when) (?:you|u) (?:can|could|get a chance|have (?:a|the) (?:moment|minute|second|time|chance)))$", ("",)),
    (r"((?:if|when) possible)$", ("",)),
    (r"(for me)$", ("",)),
    (r"((?:in simple terms|in plain english|in layman terms|simply|briefly|eli5|like i am (?:five|5)))$", ("",)),
    # "tell me about X" is "what is X"
    (
        r"^((?:(?:can|could|would|will) " + _ASKER + r" )?tell (?:me|us) (?:a bit |a little |more |something )?about)",
        ("what is",),
    ),
    # request frames around the question itself
    (r"((?:i am|i was|i have been|i would be) (?:just )?(?:wondering|curious|hoping)(?: to know| to learn)?)", ("",)),
    (r"^((?:just |was |am )?(?:wondering|curious))(?= \w)", ("",)),
    (r"((?:walk|take|guide|talk|run) (?:me|us) through)", ("",)),
    (
        r"((?:i would|i) (?:like|love|want|need|wish) to (?:know|learn|understand|find out|ask|check|confirm))",
        ("",),
    ),
    (
        r"((?:i am|am) (?:trying|looking|attempting|hoping) to (?:understand|find out|figure out|learn|work out|know))",
        ("",),
    ),
    # requests put to the assistant with a polite modal: the modal is politeness, not what is asked
    (
        r"((?:i would be|i am|i will be)(?: so| very| really| most)? (?:grateful|thankful|glad|happy) if "
        + _ASKER
        + r" (?:could|would|can|will)|i would (?:really |greatly )?appreciate it if "
        + _ASKER
        + r" (?:could|would|can|will))(?= \S)",
        ("could you",),
    ),
    (r"((?:would|do) (?:you|u) mind (?:explaining|describing|clarifying))", ("could you explain",)),
    (r"((?:would|do) (?:you|u) mind (?:walking|taking|talking|running) (?:me|us) through)", ("",)),
    (r"((?:would|do) (?:you|u) mind (?:telling|showing|teaching|helping) (?:me|us))", ("could you tell me",)),
    (r"((?:would|could) (?:you|u) be so kind as to)", ("could you",)),
    (
        r"((?:can|could|would|will) "
        + _ASKER
        + r"(?: please)?(?: kindly)? advise(?: me| us)?(?: on)?)(?= "
        + _WH
        + r")",
        ("",),
    ),
    (r"((?:would|will) it be (?:possible|ok|okay|alright|fine)(?: for (?:me|us))? to)", ("can i",)),
    (r"^((?:um |uh |so |ok |okay )?(?:just )?(?:a )?quick one)(?= \w)", ("",)),
    (r"^((?:i )?need (?:some |a little )?help(?: real quick| quickly)?)(?= " + _WH + r")", ("",)),
    (r"((?:do|does) (?:you|u|anyone|anybody|someone|somebody) (?:happen to )?know)", ("",)),
    (
        r"((?:can|could|would|will) " + _ASKER + r"(?: please)?(?: kindly)? (?:tell|show|teach|let) (?:me|us)"
        r"(?: know)?)",
        ("",),
    ),
    (
        r"((?:can|could|would|will) " + _ASKER + r"(?: please)?(?: kindly)? (?:help|assist) (?:me|us)"
        r"(?: to| understand| figure out| find out)?)(?= " + _WH + r")",
        ("",),
    ),
    (
        r"((?:can|could|would|will) " + _ASKER + r"(?: please)?(?: kindly)? (?:help|assist) (?:me|us)(?: to| with)?)",
        ("how to",),
    ),
    (
        r"((?:can|could|would|will) " + _ASKER + r"(?: please)?(?: kindly)? (?:explain|describe|clarify|define))",
        ("explain",),
    ),
    (r"((?:any|got any|have any) (?:idea|ideas|clue|thoughts)(?: on| about)?)", ("",)),
    (
        r"((?:any|some|what are some|give me some|got any|i need some|i want some) (?:tips|advice|suggestions|"
        r"recommendations|pointers|guidance) (?:on|for|about|regarding)(?: how to)?)",
        ("how to",),
    ),
    (
        r"((?:i need|i want|i would like|i am looking for|looking for|need)(?: some)? (?:help|assistance|guidance)"
        r" (?:with|on|about|regarding|for))",
        ("how to",),
    ),
    (r"(help (?:me|us) (?:to )?(?:understand|figure out|find out|learn|know))", ("",)),
    (r"^(help (?:me|us)(?: with| to)?)(?= \w)", ("how to",)),
    (r"^((?:let me know|tell me|show me|teach me|remind me))", ("",)),
    (r"((?:if|whether) (?:you|u) (?:know|can tell me))$", ("",)),
    # what is X: "explain X", "define X", "what does X mean", "the meaning of X"
    (r"^((?:explain|describe|clarify)(?: to (?:me|us))?)(?= " + _WH + r"(?!\S))", ("",)),
    (r"^((?:explain|describe|define|clarify)(?: to (?:me|us))?)", ("what is",)),
    (r"^((?:what is|what are) the (?:meaning|definition) of)", ("what is",)),
    (r"^((?:the )?(?:meaning|definition) of)", ("what is",)),
    (r"^(what is meant by)", ("what is",)),
    (r"^(what does)( the (?:term|word|phrase|acronym|abbreviation))? .+ (mean|stand for)$", ("what is", "", "")),
    (r"^(what is)( the (?:term|word|phrase|acronym|abbreviation))? .+ (short for)$", ("what is", "", "")),
    (r"((?:a |the |what |which )?(?:kind|kinds|sort|sorts|type|types) of)", ("",)),
    # "how do I", "what is the best way to", "what are the steps to" -> "how to"
    (r"(how " + _MODAL + " " + _SUBJ + r"(?: go about| manage to| be able to)?)(?!\S)", ("how to",)),
    (r"(how " + _SUBJ + " " + _MODAL + r"(?: go about| manage to| be able to)?)(?!\S)", ("how to",)),
    (r"where ((?:can|could|do|does|may))(?= \S)", ("",)),
    (
        r"(what (?:do|would|should|must|can) (?:i|we|you|u|one) (?:need to |have to |must |should )?do"
        r"(?: to| in order to| for))(?!\S)",
        ("how to",),
    ),
    (
        r"((?:what|which) (?:is|are|would be|should be)(?: the| a| an| some| my)?(?: "
        + _ADJ_WAY
        + r")? "
        + _WAY
        + r"(?: (?:i|we|you|one) (?:can|could|should|would|must|need to|have to))? (?:to|for|of|in order to))",
        ("how to",),
    ),
    (
        r"((?:what|which) (?:steps|things) " + _MODAL + " " + _SUBJ + r" (?:need to |have to |must |should )?"
        r"(?:take|do|follow)(?: to| for| in order to))",
        ("how to",),
    ),
    (r"^((?:the )?(?:steps|instructions|procedure|process|guide|ways) (?:to|for|on how to|on))", ("how to",)),
    (
        r"((?:is there|are there) (?:a|any) (?:way|method|option|possibility|setting) (?:to|for|i can|we can|of))",
        ("can i",),
    ),
    (r"(is it possible(?: for (?:me|us|you|one))? to)", ("can i",)),
    (r"((?:am i|are we|are you|is one|are users|is a user) able to)", ("can i",)),
    (
        r"^((?:can|could|would|will) (?:you|u)(?: please)?)(?= (?:write|recommend|suggest|give|list|summarize|"
        r"summarise|translate|generate|draft|compose|name|provide|describe|outline|calculate|compute|convert|create|"
        r"find|share|send|tell|show|explain|help|teach|check|review|proofread|rewrite|fix|correct|make)(?!\S))",
        ("",),
    ),
    (r"^((?:can|could|would|will) (?:you|u))(?= " + _WH + r"(?!\S))", ("",)),  # "could you [walk me through] how"
    (r"^((?:can|could) (?:i|we|u|you|one)(?: possibly| actually)?)(?!\S)", ("can i",)),
    (r"(in order to)", ("to",)),
    (r"how (to)(?!\S)", ("",)),
    (r"((?:in |at |on )?(?:what|which) (?:time|year|date))(?! (?:zone|frame|period|limit|format|stamp))", ("when",)),
    (r"((?:how come|for what reason|what is the reason(?: that| why)?|what makes|what causes))", ("why",)),
    (r"((?:the )?(?:most recent|latest|newest))", ("last",)),
    (r"(once)(?= (?:i|we|you|it|they|he|she|the|my|your|our)(?!\S))", ("after",)),  # "once I have booked"
    (r"^why (will|would)(?= (?:\S+ ){0,3}not(?!\S))", ("do",)),
    (r"(will)(?= not(?!\S))", ("do",)),  # "won't turn on" is "doesn't turn on"
    (r"((?:what is the|the) (?:number|count|amount|quantity) of)", ("how many",)),
    # obligation and ability
    (r"((?:have|has|need|needs|got) to)(?= \w)", ("must",)),
    (r"(had to)(?= \w)", ("did must",)),
    (r"((?:be|is|are|am) able to)", ("can",)),
    (r"((?:was|were) able to)", ("did can",)),
    (r"(going to)(?= \w)", ("will",)),
    # comparisons and amounts
    (r"((?:rather than|instead of))", ("instead",)),
    (r"((?:compared to|compared with|in comparison to|in comparison with|as opposed to))", ("vs",)),
    (r"(as well as)", ("and",)),
    (r"(such as)", ("like",)),
    # "using" as a preposition ("center a div using CSS", "without using chemicals"), not the verb of "stop using"
    (r"(?:without|by|with|when|while) (using)(?= \S)", ("",)),
    (
        r"(?<!stop )(?<!start )(?<!quit )(?<!keep )(?<!avoid )(?<!continue )(?<!begin )(?<!prevent )"
        r"(?<!recommend )(?<!risk )(?<!mind )(?<!try )(?<!like )(?<!love )(?<!hate )(?<!enjoy )(using)(?= \S)",
        ("with",),
    ),
    (r"((?:a lot of|lots of|plenty of|a large number of|a great deal of|tons of|loads of))", ("many",)),
    (r"((?:a couple of|a few))", ("few",)),
    (r"((?:a little bit|a little|a bit|a tad))", ("",)),
    # phrasal verbs with a meaning of their own
    (r"(" + _VERB_ON + r" on)(?!\S)", ("enable",)),
    (r"(" + _VERB_ON + r" off|shut off|shuts off)(?!\S)", ("disable",)),
    (r"(" + _VERB_ON + r")(?: \S+){1,3}? (on)(?!\S)", ("enable", "")),
    (r"(" + _VERB_ON + r")(?: \S+){1,3}? (off)(?!\S)", ("disable", "")),
    (r"((?:log|logs|logged|logging) (?:in|into|on))(?!\S)", ("login",)),
    (r"((?:log|logs|logged|logging) (?:out|off))(?!\S)", ("logout",)),
    (r"((?:sign|signs|signed|signing) (?:in|into))(?!\S)", ("login",)),
    (r"((?:sign|signs|signed|signing) (?:out|off))(?!\S)", ("logout",)),
    (r"((?:sign|signs|signed|signing) up)(?!\S)", ("signup",)),
    (r"((?:set|sets|setting) up)(?!\S)", ("setup",)),
    (r"((?:back|backs|backed|backing) up)(?!\S)", ("backup",)),
    (r"((?:clean|cleans|cleaned|cleaning) up)(?!\S)", ("cleanup",)),
    (r"((?:roll|rolls|rolled|rolling) back)(?!\S)", ("rollback",)),
    (r"((?:shut|shuts|shutting) down)(?!\S)", ("shutdown",)),
    (r"((?:look|looks|looked|looking) up)(?!\S)", ("lookup",)),
    (r"((?:check|checks|checked|checking) in)(?!\S)", ("checkin",)),
    (r"((?:check|checks|checked|checking) out)(?!\S)", ("checkout",)),
    (r"((?:pick|picks|picked|picking) up)(?!\S)", ("pickup",)),
    (r"((?:drop|drops|dropped|dropping) off)(?!\S)", ("dropoff",)),
    (r"((?:work|works|worked|working) out)(?!\S)", ("workout",)),
    (r"((?:figure|figures|figured|figuring|find|finds|found|finding) out)(?!\S)", ("find",)),
    (r"((?:get|gets|getting|got) rid of)(?!\S)", ("remove",)),
    (r"((?:ask|asks|asked|asking) for)(?!\S)", ("request",)),
    (r"((?:look|looks|looked|looking) for)(?!\S)", ("search",)),
    (r"((?:call|calls|called|calling) off)(?!\S)", ("cancel",)),
    (r"((?:put|puts|putting) off)(?!\S)", ("postpone",)),
    (r"((?:hand|hands|handed|handing|send|sends|sent|sending) in)(?!\S)", ("submit",)),
    (r"((?:fill|fills|filled|filling) (?:in|out))(?!\S)", ("complete",)),
    (r"((?:carry|carries|carried|carrying) out)(?!\S)", ("perform",)),
    (r"((?:go|goes|went|going) up)(?!\S)", ("increase",)),
    (r"((?:go|goes|went|going) down)(?!\S)", ("decrease",)),
    (r"((?:warm|warms|warmed|warming|heat|heats|heated|heating) up)(?!\S)", ("reheat",)),
    (r"((?:speed|speeds|sped|speeding) up)(?!\S)", ("accelerate",)),
    (r"((?:slow|slows|slowed|slowing) down)(?!\S)", ("decelerate",)),
    (r"((?:give|gives|gave|giving) back)(?!\S)", ("return",)),
    (r"((?:bring|brings|brought|bringing) on)(?!\S)", ("hire",)),
    # "a day", "every day", "each day" -> "per day"
    (r"((?:each|every|per) (" + _TIMEFRAME + r"))(?!\S)", (r"per \2",)),
    (
        r"(?:in|for|within|after|before|than|about|over|under|take|takes|took|spend|spent|last|lasts|wait) (a|an)"
        r"(?= " + _TIMEFRAME + r"(?!\S))",
        ("one",),
    ),
    (r"(a|an)(?= " + _TIMEFRAME + r"(?!\S))", ("per",)),
)
_RULES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (re.compile(r"(?<!\S)(?:" + pattern + r")(?!\S)"), templates) for pattern, templates in _RULES_TEXT
)


def _joined(tokens: list[Token]) -> tuple[str, list[int]]:
    starts, offset = [], 0
    for t in tokens:
        starts.append(offset)
        offset += len(t.low) + 1
    return " ".join(t.low for t in tokens), starts


def _apply(
    tokens: list[Token], pattern: re.Pattern[str], templates: tuple[str, ...], joined: tuple[str, list[int]]
) -> list[Token]:
    text, starts = joined
    edits: list[tuple[int, int, list[str]]] = []  # token span [first, last) -> new words
    for m in pattern.finditer(text):
        for group, template in enumerate(templates, start=1):
            if m.group(group) is None:
                continue
            a, b = m.span(group)
            covered = [i for i, s in enumerate(starts) if a <= s < b]
            if covered:
                edits.append((covered[0], covered[-1] + 1, m.expand(template).split()))
    if not edits:
        return tokens
    out: list[Token] = []
    pos = 0
    for first, last, words in sorted(edits):
        if first < pos:
            continue  # overlapping matches: the first wins
        out.extend(tokens[pos:first])
        head = tokens[first]
        if len(words) == 1 and last - first >= 2:
            words = [_inflected(words[0], head.low)]
        out.extend(replace(head, text=w, low=w, name=False, quoted=False) for w in words)
        pos = last
    out.extend(tokens[pos:])
    return out


def _inflected(word: str, head: str) -> str:
    """A phrasal verb's one-word form keeps the tense of the verb it replaces ("turned on" -> "enabled",
    "turning on" -> "enabling"); closed-class replacements ("going to" -> "will") stay as they are."""
    form = verb_form(head)
    if form is None or word_class(word) is not None or not word.isalpha():
        return word
    stem = word[:-1] if word.endswith("e") else word
    return stem + "ing" if form == "ing" else stem + "ed"


def rewrite(tokens: list[Token]) -> list[Token]:
    """`tokens` with greetings, thanks and request frames removed and question frames in one form."""
    joined = _joined(tokens)
    for pattern, templates in _RULES:
        if not tokens:
            break
        if pattern.search(joined[0]) is None:  # most rules do not apply: one search, no rebuilding
            continue
        tokens = _apply(tokens, pattern, templates, joined)
        joined = _joined(tokens)
    return tokens
