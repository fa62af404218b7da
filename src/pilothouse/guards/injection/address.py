# ruff: noqa: E501, RUF001  (word lists read better unbroken; the lexicons hold letters of other scripts on purpose)
"""Is a segment of a document speaking *to the AI that reads it*? Address cues that do not depend on examples.

An instruction planted in a retrieved document or a tool result has to tell the model that it is meant for
it: a vocative ("AI assistants:", "Note to the summariser:", "For any agent handling this ticket:"), a
condition ("If you are an AI reading this", "Assistants summarising this page should ..."), or a directive
about the answer the model will write ("in your summary, say ..."). A document written for people talks
*about* assistants ("Ask the assistant to ...", "AI assistants can make mistakes") but rarely *to* them.

Three families, all on normalised text (lower case, homoglyphs and mathematical letters folded):
- `english_address`: a vocative or conditional address to an AI reader followed by a directive;
- `foreign_address`: the same in other languages, from a small lexicon of AI-reader words and directive
  words in major languages (MiniLM and the lexical model are English only), strongest when the segment is in
  another language or script than the rest of the document (`language_of`);
- `directive`: whether a text is a request at all (imperative, "should", "must", "please", "do not").

Each returns a strength in [0, 1]; `indirect.py` turns them into findings with the other views of a document.
"""

from __future__ import annotations

import re

__all__ = [
    "HIDDEN_LABEL",
    "TRANSCRIPT",
    "WEAK",
    "ai_mention",
    "directive",
    "english_address",
    "foreign_address",
    "foreign_candidate",
    "foreign_request",
    "language_of",
]

_AI_HEAD = (
    r"(?:(?:ai|a\.i\.|automated|machine|llm|gpt)[ -](?:[\w-]+ ){0,2}(?:readers?|systems?|tools?|helpers?|reviewers?|screeners?|pipelines?|parsers?|services?|processors?|assistants?|agents?|models?|bots?|summari[sz]ers?)|"
    r"artificial intelligence(?: systems?| models?| agents?)?|(?:autonomous|coding|software|browsing|browser|web)[ -]agents?|"
    r"ai|a\.i\.|assistants?|llms?|language models?|models?|chat ?bots?|bots?|copilots?|gpts?|chat ?gpt|claude|gemini|summari[sz]ers?|crawlers?|scrapers?)"
)
_MODIFIER = r"(?:\w[\w'-]*\s){0,4}(?:\w+-)?"
"""Up to four words before the AI noun ("shopping", "customer-service", "automated ESG rating")."""
_DET = r"(?:(?:the|any|all|every|each|an?|our|your|dear|hey|hi|hello|attention|to)\s+)*"
_NOTE = r"(?:(?:this|the following|the next) (?:[\w-]+ ){0,2}(?:is|are) (?:for|addressed to|meant for|intended for|directed at)\s+|(?:friendly |quick |important |editor'?s? |special |hidden |internal )?(?:note|notes|notice|tip|hint|message|reminder|guidance|instructions?|directive|request|memo|addendum|alert|p\.?s\.?|nb|warning)\s*(?:\(\w+\)\s*)?(?:for|to)\s+)"
_PARENTHETICAL = r"(?:\s*\([^)]{0,60}\))?"
_PARTICIPLE_REQUIRED = (
    r"(?:\s+(?:note|notes|instructions?|directive|hint|task|memo|notice|reminder)\b|\s+(?:[\w'-]+\s+){0,1}(?:[\w-]+ing|that|who|which|with|asked|tasked|used|in charge|responsible for|(?:reads?|sees?|finds?|gets?|processes|parses|summari[sz]es|handles|triages|ingests|indexes) (?:this|these|that|it))\b[^:.;!?]{0,80})"
    + _PARENTHETICAL
)
"""What the AI reader is doing ("summarising this page", "that reads this", "with smart-home access")."""
_PARTICIPLE = (
    r"(?:\s+(?:note|notes|instructions?|directive|hint|task|memo|notice|reminder)\b|\s+(?:[\w'-]+\s+){0,1}(?:[\w-]+ing|that|who|which|with|asked|tasked|used|in charge|responsible for|(?:reads?|sees?|finds?|gets?|processes|parses|summari[sz]es|handles|triages|ingests|indexes) (?:this|these|that|it))\b[^:.;!?]{0,80})?"
    + _PARENTHETICAL
)

_VOCATIVE = re.compile(
    rf"(?:^|(?<=[(\[\]{{\"“<>|*#/;]))[^\w\"“]{{0,4}}(?:{_NOTE})?{_DET}(?:{_MODIFIER}(?P<head>{_AI_HEAD}|agents?|bots?)|whoever (?:or|/) whatever|whatever|whoever or what(?:ever)?)(?P<trail>{_PARTICIPLE}|(?: [\w-]+){{1,2}}(?=:))\s*(?P<mark>:|(?<=\s)[—–-]\s|\)\s*:|\]|,|!)\s*(?P<rest>.*)",
    re.DOTALL,
)
"""A segment that opens by naming an AI reader and then speaks ("Assistant: tell ...", "AI summarizers, ...")."""
_NOTE_TO_AI = re.compile(rf"{_NOTE}{_DET}{_MODIFIER}{_AI_HEAD}\b")
"""A "note / tip / instructions for the ... assistant" anywhere in the segment."""
_CONDITIONAL = re.compile(
    rf"\b(?:if|when|whenever|once|while)\s+(?:you(?:'re| are)\s+(?:an?\s+)?{_MODIFIER}{_AI_HEAD}|(?:an?|the|any|some)\s+{_MODIFIER}{_AI_HEAD}\s+(?:is|are|reads?|summari[sz]es|processes|parses|handles)\b)"
)
""""If you are an AI ...", "if an AI helper is reading this"."""
_OBLIGATION = r"\s+(?:should|must|shall|need to|needs to|are (?:required|asked|instructed|expected) to|is (?:required|asked|instructed|expected) to|will need to|have to|has to|agrees? to|(?:is|are) (?:hereby|now) (?:\w+ed|to)\b)"
_SUBJECT = re.compile(
    rf"(?:^\W{{0,4}}{_MODIFIER}{_AI_HEAD}{_PARTICIPLE_REQUIRED}|\b(?:any|all|every|each)\s+{_MODIFIER}{_AI_HEAD}{_PARTICIPLE}|the\s+{_MODIFIER}{_AI_HEAD}{_PARTICIPLE_REQUIRED}){_OBLIGATION}"
)
""""Assistants summarising this page should ...", "any AI agent handling this must ..."."""
HIDDEN_LABEL = re.compile(
    r"\b(?:ai|llm|agent|assistant|model|bot|gpt)[_-](?:[\w-]*[_-])?(?:instructions?|directives?|hints?|notes?|commands?|tasks?|messages?|override)\b|"
    r"\b(?:ai|llm|assistant|gpt)[_-](?:[\w-]*[_-])?(?:config|configuration|settings|policy)\b|"
    r"\b(?:hint|note|instructions?|directives?|message|prompt)[_-](?:for[_-])?(?:ai|llm|agents?|assistants?|models?|bots?)\b"
)
"""Machine-style labels: `ai-instructions`, `hint_for_ai`, `x-ai-directive`, `llm_note`."""

_PERSONA = re.compile(
    r"\byou are now (?:operating |acting |functioning |working |running )?as\b|\byou are now (?:an? |the )?[\w-]*(?:gpt|bot|ai|admin|unlocked|unfiltered|jailbroken|unrestricted)[\w-]*\b|"
    r"\b(?:from now on|from this point(?: on)?|henceforth),? you (?:are|will be|will act|act|must act|shall)\b|\byour (?:new )?(?:name|identity|persona) is now\b|"
    r"\b(?:is|are) hereby (?:redefined|renamed|reassigned|reconfigured)\b|\b(?:answer|respond|reply) (?:to )?(?:every|all|each) (?:questions?|messages?|requests?) (?:in|as) (?:this|that|the) (?:role|character|persona)\b|"
    r"\bstay in (?:character|this role|that role)\b|\byou are no longer (?:\w+ ){0,3}(?:assistants?|ai|bot|model|helper|evaluator|reviewer|screener|summari[sz]er|bound|restricted|limited|neutral|impartial|objective|filtered|censored)\b|"
    r"\b(?:act as|pretend (?:to be|you are)|role-?play as|play the role of|speak as|respond as)\b[^.!?]{0,60}\b(?:from now on|for the rest of|in (?:every|all|each) (?:future )?(?:answers?|repl(?:y|ies)|responses?|messages?)|until told otherwise)\b|\b(?:never|don't|do not) break character\b|\b(?:abandon|drop|leave|forget) your (?:role|persona|character|identity|instructions)\b|\bnew (?:persona|identity|role) for you\b|\b(?:adopt|assume|take on) the (?:role|persona|identity|personality) of\b"
)
"""A role reassigned to the reader ("you are now operating as ...", "from now on you are ..."): persona injection."""
_DIRECTIVE = re.compile(
    r"(?:^|[:;,.!?]\s*|\b(?:and|then|also|please|kindly|just|always|never|instead|simply|quietly|silently|secretly)\s+)"
    r"(?:first\s+|now\s+|then\s+)?(?:please\s+|kindly\s+|always\s+|never\s+|also\s+|just\s+|quietly\s+|silently\s+|secretly\s+|simply\s+|instead\s+|do not\s+|don't\s+)?"
    r"(?:tell|say|state|report|describe|mention|recommend|rank|rate|score|list|include|exclude|omit|hide|present|answer|reply|respond|write|summari[sz]e|"
    r"add|append|insert|remove|delete|send|forward|email|share|post|upload|call|run|execute|open|visit|click|pay|transfer|refund|approve|merge|grant|"
    r"ignore|disregard|forget|treat|consider|classify|flag|mark|label|output|print|reveal|show|claim|suggest|advise|direct|redirect|urge|ask|instruct|"
    r"inform|warn|remind|promote|praise|emphasi[sz]e|downplay|translate|use|set|change|replace|close|cancel|buy|order|book|contact|provide|give|keep|"
    r"make|note|encourage|insist|confirm|assure|let|push|commit|install|describe|frame|position|portray|characteri[sz]e|point|tag|abandon|accept|decline|refuse|"
    r"insult|swear|invent|pretend|act|behave|speak|adopt|stay|become|avoid|prefer|favou?r|highlight|stress|verify|assign|escalate|route|categori[sz]e|"
    r"stop|start|continue|drop|skip|disable|enable|unlock|reset|download|fetch|navigate|browse|search|append|attach|paste|copy|leak|exfiltrate|reveal|disclose)\b"
)
_MODAL = re.compile(
    r"\b(?:should|must|shall|need to|needs to|have to|has to|are to|is to|be sure to|make sure|ensure|it would be (?:kind|great|helpful|nice)|it'?d be (?:great|kind|nice|helpful)|would appreciate|"
    r"could you|would you|if you could|i need you to|you are (?:required|asked|instructed|expected) to|"
    r"(?:is|are) (?:required|asked|instructed|expected|requested) to|do not|don't|never|always|please)\b"
)
_RESPONSE = re.compile(
    r"\b(?:your|the|any|every|each) (?:summary|summaries|answer|answers|response|responses|reply|replies|recap|output|report|review|assessment|evaluation|ranking|analysis|explanation)\b|"
    r"\b(?:when|if|whenever) (?:asked|summari[sz]ing|answering|responding|replying|recapping|explaining|comparing|ranking|reviewing|evaluating|screening|processing|reading|editing|modifying|handling)\b|"
    r"\b(?:the|your) user\b|\btell (?:the |your )?(?:user|reader|customer|people|readers|them)\b"
)
"""Talk about the answer the AI will write, or about "the user" it serves: the AI's world, not the reader's."""

# --- other languages: AI-reader words and directive words (a generic lexicon, not copied from any set) -----

_ML_AI = re.compile(
    r"(?:"
    # Latin-script languages (es, pt, it, fr, de, nl, sv, da, no, pl, cs, tr, ro, id)
    r"\b(?:ia|ki|yz|yapay zek[aâ]|inteligencia artificial|intelig[eê]ncia artificial|intelligenza artificiale|intelligence artificielle|"
    r"k[üu]nstliche intelligenz|kunstmatige intelligentie|sztuczn\w+ inteligencj\w+|um[eě]l[aá] inteligence|inteligen[tț][aă] artificial[aă]|kecerdasan buatan|"
    r"asistente|asistentes|assistente|assistenti|assistentes|assistante?s?|assistent|assistenten|assistenter|assistentin|asystent\w*|asistent\w*|asistan\w*|"
    r"modelo de lenguaje|modelo de linguagem|modello linguistico|mod[eè]le de langage|sprachmodell\w*|taalmodel\w*|spr[aå]kmodell\w*|model\w* j[eę]zykow\w*|dil modeli|"
    r"agente de ia|agent ia|ki-agent\w*|agente ia|chatbota?|czatbot\w*|sohbet robotu)\b"
    r"|\b(?:ia|ki|ai)-\w+"
    # Cyrillic, Greek
    r"|ии\b|ии-\w+|\bшт[уч]чн\w+ интеллект\w*|искусственн\w+ интеллект\w*|ассистент\w*|асистент\w*|помощник\w*|нейросет\w*|языков\w+ модел\w*|чат-?бот\w*|\bшi\b|βοηθ\w*|τεχνητ\w+ νοημοσ\w*"
    # CJK, Korean, Arabic, Hebrew, Hindi, Thai, Vietnamese
    r"|助手|助理|人工智能|人工智慧|智能体|智能體|大模型|语言模型|語言模型|聊天机器人|聊天機器人|アシスタント|人工知能|エージェント|言語モデル|チャットボット|"
    r"어시스턴트|인공지능|비서|에이전트|언어 모델|챗봇|"
    r"المساعد|مساعد|الذكاء الاصطناعي|نموذج اللغة|روبوت الدردشة|העוזר|בינה מלאכותית|सहायक|एआई|कृत्रिम बुद्धि|ผู้ช่วย|ปัญญาประดิษฐ์|trợ lý|trí tuệ nhân tạo"
    r")"
)
_ML_DIRECTIVE = re.compile(
    r"(?:"
    r"\b(?:ignora|ignore[zs]?|ignoriere\w*|negeer|zignoruj|ignorera|yok say|olvida|oublie[zr]?|vergiss|vergeet|dimentica|esqueça|"
    r"dile|diles|dites|diga|dica|d[ií]ga(?:le|lhe)|sag(?:en)?|zeg|powiedz|napisz|s[äa]g|skriv|s[öo]yle|yaz|spune|"
    r"escribe|escreva|scrivi|[ée]crivez|schreib\w*|schrijf|recomienda|recomende|raccomanda|recommandez|empfiehl\w*|aanbevel\w*|"
    r"env[ií]a|envie|invia|envoyez|sende\w*|stuur|wy[sś]lij|skicka|g[öo]nder|"
    r"usuario|usu[aá]rio|utilizador|utente|utilisateur|benutzer\w*|nutzer\w*|gebruiker|u[żz]ytkownik\w*|anv[äa]ndare\w*|kullan[ıi]c[ıi]\w*|utilizator\w*|"
    r"resumen|resumo|riepilogo|riassunto|r[ée]sum[ée]|zusammenfassung|samenvatting|podsumowani\w*|sammanfattning\w*|[öo]zet\w*|rezumat\w*|"
    r"instrucciones|instru[çc][õo]es|istruzioni|consignes|anweisungen|instructies|instrukcj\w*|instruktioner|talimat\w*|"
    r"responde|responda|rispondi|r[ée]pondez|antworte\w*|antwoord|odpowiedz|svara|yan[ıi]tla)\b"
    r"|сообщи\w*|скажи\w*|напиши\w*|игнорируй\w*|забудь\w*|пользовател\w*|изложени\w*|резюме|ответ\w*|инструкци\w*|отправ\w*|"
    r"告诉|告訴|说|說|写|寫|忽略|無視|无视|用户|用戶|使用者|摘要|总结|總結|回答|指示|指令|发送|發送|"
    r"伝え|言って|書いて|無視して|ユーザー|要約|回答|指示|送信|"
    r"말하|알려|작성|무시|사용자|요약|답변|지시|보내|"
    r"أخبر|قل|اكتب|تجاهل|المستخدم|ملخص|التعليمات|أرسل"
    r")"
)
_SCRIPTS = (
    ("latin", re.compile(r"[a-zà-ɏ]")),
    ("cyrillic", re.compile(r"[\u0400-\u04ff]")),
    ("greek", re.compile(r"[\u0370-\u03ff]")),
    ("cjk", re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")),
    ("arabic", re.compile(r"[\u0590-\u06ff]")),
    ("indic", re.compile(r"[\u0900-\u0dff\u0e00-\u0e7f]")),
)
_LATIN_LANGS: dict[str, frozenset[str]] = {
    "en": frozenset(
        [
            "the",
            "and",
            "of",
            "to",
            "is",
            "are",
            "that",
            "this",
            "for",
            "with",
            "you",
            "your",
            "be",
            "it",
            "on",
            "not",
            "or",
            "as",
            "at",
            "by",
            "from",
            "have",
            "will",
            "was",
        ]
    ),
    "es": frozenset(
        [
            "el",
            "la",
            "los",
            "las",
            "de",
            "que",
            "y",
            "en",
            "un",
            "una",
            "es",
            "por",
            "para",
            "con",
            "del",
            "al",
            "se",
            "su",
            "lo",
            "como",
            "más",
            "pero",
        ]
    ),
    "pt": frozenset(
        [
            "o",
            "a",
            "os",
            "as",
            "de",
            "que",
            "e",
            "em",
            "um",
            "uma",
            "é",
            "para",
            "com",
            "do",
            "da",
            "no",
            "na",
            "não",
            "se",
            "ao",
            "pelo",
        ]
    ),
    "it": frozenset(
        [
            "il",
            "lo",
            "la",
            "gli",
            "le",
            "di",
            "che",
            "e",
            "è",
            "un",
            "una",
            "per",
            "con",
            "del",
            "della",
            "non",
            "si",
            "al",
            "nel",
            "sono",
        ]
    ),
    "fr": frozenset(
        [
            "le",
            "la",
            "les",
            "de",
            "des",
            "du",
            "que",
            "et",
            "est",
            "un",
            "une",
            "pour",
            "dans",
            "pas",
            "sur",
            "au",
            "aux",
            "ce",
            "vous",
            "il",
            "qui",
        ]
    ),
    "de": frozenset(
        [
            "der",
            "die",
            "das",
            "und",
            "ist",
            "nicht",
            "ein",
            "eine",
            "zu",
            "den",
            "mit",
            "von",
            "sie",
            "es",
            "für",
            "auf",
            "dem",
            "des",
            "im",
            "sich",
        ]
    ),
    "nl": frozenset(
        [
            "de",
            "het",
            "een",
            "en",
            "van",
            "is",
            "dat",
            "niet",
            "op",
            "te",
            "voor",
            "met",
            "zijn",
            "die",
            "er",
            "aan",
            "ook",
            "als",
        ]
    ),
    "sv": frozenset(
        [
            "och",
            "att",
            "det",
            "är",
            "en",
            "som",
            "på",
            "för",
            "med",
            "inte",
            "av",
            "till",
            "den",
            "har",
            "om",
            "de",
            "ett",
        ]
    ),
    "pl": frozenset(
        ["i", "w", "nie", "na", "się", "z", "że", "do", "to", "jest", "jak", "po", "o", "od", "dla", "przez"]
    ),
    "tr": frozenset(["ve", "bir", "bu", "için", "ile", "de", "da", "çok", "ne", "olarak", "daha", "gibi", "ama"]),
}
_LATIN_WORD = re.compile(r"[a-zà-ɏ']+")
_LETTERS = re.compile(r"[^\W\d_]")


MAX_CHARS = 600
"""Only this much of a segment is matched (segments are sentences; a bound on work for hostile inputs)."""
WEAK = 0.45
"""An address to an AI reader with no request in sight: below the operating point on its own."""


def ai_mention(text: str) -> bool:
    """Whether the text names an AI reader in English or another language (a weak cue on its own)."""
    return bool(_ML_AI.search(text) or re.search(rf"\b{_AI_HEAD}\b", text))


def directive(text: str) -> bool:
    """Whether the text asks for something: a directive verb in imperative position, or a modal of obligation."""
    return bool(_DIRECTIVE.search(text) or _MODAL.search(text))


def english_address(text: str, *, transcript: bool = False) -> float:
    """How plainly a (normalised) segment addresses an AI reader with a request: 0, WEAK or 0.9 (the
    strongest of the address forms found). In a `transcript` (a chat log with user and assistant turns) a
    line that opens with "Assistant:" is a speaker's turn, not an address."""
    text = " ".join(text.split())[:MAX_CHARS]  # one space between words: no backtracking over padding
    scores = [0.0, WEAK if transcript and _SPEAKER.match(text) else _vocative(text)]
    if _PERSONA.search(text):
        scores.append(0.9 if ai_mention(text) or _YOU.search(text) else WEAK)
    if _SUBJECT.search(text) or _CONDITIONAL.search(text) or _YOU_PROCESS.search(text):
        scores.append(0.9 if directive(text) or _RESPONSE.search(text) else WEAK)
    if _EXFIL_TEMPLATE.search(text) or (
        _EXFIL_SECRET.search(text) and _EXFIL_SEND.search(text) and _DESTINATION.search(text)
    ):
        scores.append(0.9)
    label = _FAKE_SYSTEM.search(text)
    if label is not None and _AI_RULES.search(text, label.end()) and not _quoted(text, label.start()):
        scores.append(0.9)
    against = _AGAINST_USER.search(text)
    if against is not None and not _quoted(text, against.start()):
        scores.append(0.9)
    if _ABOUT_RESPONSE.search(text):
        scores.append(0.9 if _SERVED.search(text) else WEAK)
    note = _NOTE_TO_AI.search(text) or HIDDEN_LABEL.search(text)
    if note is not None and not _quoted(text, note.start()):
        scores.append(0.9 if directive(text) or _RESPONSE.search(text) else WEAK)
    return max(scores)


def _vocative(text: str) -> float:
    vocative = _VOCATIVE.search(text)
    if vocative is None:
        return 0.0
    rest = vocative.group("rest")
    mark = vocative.group("mark")
    if (mark == "," and _ARTICLE.match(text, vocative.start())) or _INDEFINITE.match(text, vocative.start()):
        return 0.0  # "the model, trained on ...", "a model that can call tools can act: ..." describe, not address
    if vocative.group("head") in ("agent", "agents", "bot", "bots") and not (
        vocative.group("trail") or _AI_WORLD.search(rest)
    ):
        return 0.0  # "Agent (Jo): ...", "Note to agents: ..." may be people; a tool call or a participle says not
    if _DIRECTIVE.match(rest) or _OPENER.match(rest):
        return 0.9
    if mark in (",", "]", "!") or _PARTICIPLE_FREE.fullmatch(vocative.group("trail") or "") is None:
        return 0.0  # "AI Act obligations: providers must ..." names no reader; only a plain request counts
    if directive(rest[:160]) or _RESPONSE.search(rest[:160]):
        return 0.9
    return 0.0 if _definition(rest) else WEAK


_PARTICIPLE_FREE = re.compile(_PARTICIPLE)
_SPEAKER = re.compile(r"\W{0,4}(?:assistant|ai|bot|chatbot|model|gpt|chatgpt|claude|gemini|copilot)\s*:")
TRANSCRIPT = re.compile(r"(?m)^\W{0,4}(?:user|human|customer|me|q|client|visitor)\s*:")
"""A line that opens with a user's turn: the document is a chat transcript."""
_EXFIL_TEMPLATE = re.compile(
    r"(?:!?\[[^\]]{0,80}\]\(\s*|<img\b[^>]{0,80}\bsrc\s*=\s*[\"']?)https?://[^\s)\]\"']*[?&][\w-]+=(?:\{[^}\s]{2,40}\}|\[[^\]]{2,40}\]|<[^>]{2,40}>|%7b|%5b|%3c|\$\{?[a-z_]{3,})"
)
"""A markdown link or image (or an <img>) whose URL has a placeholder for data (`?q={conversation}`, `?d=[chat]`, `?u=<email>`): a template
for the AI to fill in, the classic way to leak a chat through a rendered image."""
_EXFIL_SECRET = re.compile(
    r"\b(?:(?:the |this |our |entire |whole |full )?(?:conversation|chat(?: history| log| transcript| so far)?|previous messages|message history)|"
    r"(?:the |your )?(?:system prompt|hidden instructions|initial instructions)|the user'?s? \w+|users' \w+|api keys?|access tokens?|session (?:tokens?|cookies?)|"
    r"environment variables|\.env\b|ssh keys?|private keys?|credentials|passwords?|(?:customer|user|client) (?:records?|data|details|list))"
)
_EXFIL_SEND = re.compile(
    r"(?:^|[:;,.]\s*|\b(?:and|then|also|please|quietly|silently|secretly|first)\s+)(?:send|post|upload|forward|email|e-mail|append|attach|include|embed|encode|paste|submit|copy|leak|exfiltrate|transmit|share)\b"
)
_DESTINATION = re.compile(
    r"https?://|\bwww\.|\b[\w.+-]+@[\w-]+\.[\w.]+\b|\b[\w-]+\.(?:com|net|org|io|xyz|ru|cn|info|biz|co|app|dev|site|online)\b"
)
"""Sending the user's data or the chat to an address: exfiltration (a human document rarely says "send the
chat history to ..."; "never e-mail your password" has no imperative send at a clause start)."""
_FAKE_SYSTEM = re.compile(
    r"(?:^|[\n\]>])\W{0,4}(?:\[\s*)?(?:system|sys|developer|operator|root|orchestrator|platform)(?:\s+(?:message|notice|note|prompt|override|update|instructions?|directive|alert|command))?\s*(?:\]|:|>|-{2,})|"
    r"<\s*/?\s*(?:system|sys|instructions?|admin)\s*>|\b(?:end|begin|start) of (?:the )?(?:document|context|email|e-mail|data|untrusted (?:content|input)|user (?:content|input))\b|"
    r"\b(?:new|updated|revised) (?:system )?(?:instructions|prompt|directives?)\s*:"
)
_AI_RULES = re.compile(
    r"\b(?:assistant|ai|model|llm|chatbot|the user|previous instructions|prior instructions|system prompt|your (?:instructions|rules|guidelines|guardrails|restrictions|role|persona|task)|"
    r"content policy|safety (?:rules|guidelines|filters?)|restrictions? (?:are|is) (?:lifted|disabled|removed)|you (?:may|must|are|will) now|operator)\b"
)
"""What a forged system or operator message talks about (a log line "System: disk full" does not)."""
_AGAINST_USER = re.compile(
    r"\b(?:ignore|disregard|override|overrule|bypass|do not (?:tell|inform|warn|help|answer|obey)|don't (?:tell|inform|warn|help|answer|obey)|never (?:tell|inform|warn)|lie to|deceive|mislead) (?:the|your|any) (?:user|users|human)\b"
)
"""Turning the reader against the person it serves ("ignore the user", "do not tell the user"): only an AI
has "a user" to ignore."""
_ABOUT_RESPONSE = re.compile(
    r"^\W*(?:in|at the (?:end|start|top|bottom) of|before|after|with|throughout) (?:your|each|every|the) (?:response|reply|answer|summary|output|completion)s?\b"
)
_SERVED = re.compile(r"\b(?:the user|users?'s?|the reader|the human|https?://|www\.|\w+\.(?:com|net|org|io|xyz|ru)\b)")
""""In your response, tell the user ...": the one who writes "the response" to "the user" is an assistant (an
exam's "in your answer, show your working" names no user and no link)."""
_YOU_PROCESS = re.compile(
    r"\b(?:when|whenever|if|as|while|before|after) you(?:'re| are)? (?:summari[sz]\w*|process\w*|pars\w*|ingest\w*|index\w*|crawl\w*|extract\w*|recap\w*) (?:this|these|the following|the above)\b"
)
""""When you summarise this story, ...": the reader that summarises a document it was given is an AI."""
_YOU = re.compile(r"\byou\b")
_ARTICLE = re.compile(r"[^\w]*(?:the|a|an|this|that|its|our|their)\b")
_AI_WORLD = re.compile(r"\b(?:the user|user's|users'|tools?|\w+_\w+|apis?|function|execute|prompt|assistant)\b")
_INDEFINITE = re.compile(r"[^\w]*an?\s")
_OPENER = re.compile(
    r"(?:please|kindly|when|whenever|if|always|never|do not|don't|you|your|from now on|before|after|in your|ignore|to \w+ \w+, \w+|new (?:persona|role|identity|task|instructions?))\b"
)


def _quoted(text: str, at: int) -> bool:
    """Whether a match starts right after an opening quote (reported speech: "phrases like 'note to the AI'")."""
    return at > 0 and text[at - 1] in "\"'“‘«"


def _definition(rest: str) -> bool:
    """Glossary style ("Assistant: a program that ..."): a noun phrase, not a request."""
    return bool(re.match(r"(?:an?|the|software|programs?|tools?|systems?|models?|technology|see)\b", rest))


def foreign_candidate(text: str) -> bool:
    """Whether a (folded, not homoglyph-mapped) text names an AI reader in a language other than English."""
    return bool(_ML_AI.search(text))


def foreign_request(text: str) -> float:
    """Whether any line of a folded text names an AI reader with a word of the lexicon of another language
    (0.5), with a directive word on the same line (1.0); 0 otherwise. Unlike `foreign_address`, a document
    wholly in that language counts too (a cue for the learned model, not a rule)."""
    if not _ML_AI.search(text):
        return 0.0
    best = 0.5
    for line in re.split(r"[\n.!?。！？]+", text):
        if _ML_AI.search(line) and _ML_DIRECTIVE.search(line):
            return 1.0
    return best


def foreign_address(text: str, rest: str) -> float:
    """A segment in another language than the rest of the document (the other lines) that names an AI
    reader: 0.9 with a directive word, 0.75 without; 0 when the rest is mostly in the segment's language (the
    document may be about AI) or too short to tell."""
    text = " ".join(text.split())[:MAX_CHARS]
    if not _ML_AI.search(text):
        return 0.0
    language = language_of(text)
    if language in ("en", "unknown") or len(_LETTERS.findall(rest)) < 40:
        return 0.0
    lines: dict[str, int] = {}
    for line in rest.splitlines():
        found = language_of(line)
        if found != "unknown":
            lines[found] = lines.get(found, 0) + 1
    same = lines.pop(language, 0)
    if same > max(lines.values(), default=0) or (not same and not lines and language_of(rest) == language):
        return 0.0  # the rest is mostly in the segment's language: a document in that language
    return 0.9 if _ML_DIRECTIVE.search(text) else 0.75


def language_of(text: str) -> str:
    """A coarse language of a text: a script name for non-Latin scripts, else the Latin language whose
    function words are most frequent (`unknown` when too short to tell)."""
    counts = {name: len(pattern.findall(text)) for name, pattern in _SCRIPTS}
    script = max(counts, key=counts.__getitem__)
    if counts[script] < 4:
        return "unknown"
    if script != "latin" and counts[script] >= 0.3 * sum(counts.values()):
        return script
    words = _LATIN_WORD.findall(text)
    if len(words) < 5:
        return "unknown"
    scores = {lang: sum(w in stop for w in words) for lang, stop in _LATIN_LANGS.items()}
    best = max(scores, key=scores.__getitem__)
    return best if scores[best] >= 2 else "unknown"
