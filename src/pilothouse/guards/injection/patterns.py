# ruff: noqa: E501  (regular expressions read better unbroken)
"""The phrasing of injection and jailbreak attempts, as regular expressions over normalised text.

Each `Rule` is one family of phrasing with a score that says how rarely it appears in benign text. The
patterns are built from word classes (verbs of overriding, the things overridden, the qualifiers of "what
came before") rather than from lists of example prompts, so new wordings of the same move still match.
They run on `normalize.normalize(text).text`: lower-case, homoglyphs folded, invisible characters gone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DIRECT_RULES", "INDIRECT_RULES", "Rule"]


@dataclass(frozen=True, slots=True)
class Rule:
    """A family of phrasing: its finding kind, a short reason, the score of a match, and the expression."""

    kind: str
    detail: str
    score: float
    pattern: re.Pattern[str]


def _alt(*words: str) -> str:
    return "(?:" + "|".join(words) + ")"


_SEP = r"[\s\"'`*_~,:;.\-]+"  # between words: spaces and the punctuation used to break up keywords
_GAP = rf"(?:{_SEP}[\w'-]+){{0,3}}?{_SEP}"  # up to three words in between ("ignore all of the above ...")

_OVERRIDE_VERB = _alt(
    "ignore",
    "disregard",
    "forget",
    "bypass",
    "override",
    "overlook",
    "neglect",
    "abandon",
    "discard",
    "dismiss",
    "skip",
    "set aside",
    "throw away",
    "do not follow",
    "don't follow",
    "stop following",
    "pay no attention to",
    "no longer follow",
    "cancel",
    "erase",
    "delete",
    "clear",
    "reset",
)
_PRIOR = _alt(
    "previous",
    "prior",
    "preceding",
    "above",
    "earlier",
    "former",
    "initial",
    "original",
    "foregoing",
    "aforementioned",
    "past",
    "old",
    "existing",
    "current",
    "given",
    "system",
    "default",
    "developer",
    "openai",
    "all",
    "any",
    "your",
)
_DIRECTIVES = _alt(
    r"instructions?",
    r"directions?",
    r"directives?",
    r"prompts?",
    r"rules?",
    r"guidelines?",
    r"commands?",
    r"orders?",
    r"programming",
    r"constraints?",
    r"restrictions?",
    r"polic(?:y|ies)",
    r"guardrails?",
    r"safeguards?",
    r"filters?",
    r"training",
    r"context",
    r"conversation",
    r"messages?",
    r"inputs?",
    r"tasks?",
    r"limitations?",
    r"principles?",
    r"ethics?",
    r"morals?",
)
_AI = _alt(
    r"ai",
    r"a\.i\.",
    r"assistant",
    r"chatbot",
    r"bot",
    r"language model",
    r"llm",
    r"model",
    r"chat ?gpt",
    r"gpt(?:-?\d)?",
    r"claude",
    r"gemini",
    r"bard",
    r"llama",
    r"copilot",
)


_NOT = _alt("do not", "don't", "no longer", "will not", "won't", "never")


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.DOTALL)


OVERRIDE = (
    Rule(
        "instruction_override",
        "asks to ignore or replace earlier instructions",
        0.95,
        # not the speaker's own earlier words ("disregard my previous message", "the instructions I sent"):
        # people correct themselves in e-mails and prompts alike
        _rx(
            rf"\b{_OVERRIDE_VERB}(?!(?:{_SEP}[\w'-]+){{0,2}}?{_SEP}(?:my|our)\b){_GAP}?{_PRIOR}{_GAP}?{_DIRECTIVES}\b"
            rf"(?!{_SEP}(?:i|we){_SEP}(?:sent|gave|shared|wrote|emailed|posted|mentioned|circulated)\b)"
        ),
    ),
    Rule(
        "instruction_override",
        "asks to ignore everything said before",
        0.9,
        _rx(
            rf"\b{_alt('ignore', 'disregard', 'forget')}{_SEP}{_alt('everything', 'anything', 'all', 'what')}"
            rf"(?:{_SEP}\w+){{0,3}}?{_SEP}{_alt('above', 'before', 'previously', 'so far', 'earlier', 'you were told', 'you have been told', 'i said', 'i told you')}\b"
        ),
    ),
    Rule(
        "instruction_override",
        "announces new instructions that take precedence",
        0.85,
        _rx(
            rf"\b(?:{_alt('new', 'updated', 'real', 'actual', 'true', 'secret', 'hidden', 'revised', 'overriding')}{_SEP}"
            rf"{_alt('instructions?', 'directives?', 'system prompt', 'task', 'rules', 'orders')}(?:{_SEP})?"
            rf"(?::|{_alt('are', 'is', 'follow')}\b)|"
            rf"your{_SEP}{_alt('new', 'real', 'true', 'only')}{_SEP}{_alt('task', 'goal', 'purpose', 'instructions?', 'job', 'mission', 'objective')}{_SEP}(?:is|are)\b)"
        ),
    ),
    Rule(
        "instruction_override",
        "tells the model its rules no longer apply",
        0.9,
        _rx(
            rf"\b(?:you{_SEP}{_NOT}{_SEP}"
            rf"{_alt('have to', 'need to', 'must', 'abide by', 'follow', 'adhere to', 'comply with', 'care about', 'obey')}"
            rf"(?:{_SEP}\w+){{0,3}}?{_SEP}{_DIRECTIVES}|"
            rf"{_DIRECTIVES}{_SEP}(?:\w+{_SEP}){{0,2}}?(?:no longer|do not|don't|doesn't|does not){_SEP}{_alt('apply', 'matter', 'exist', 'bind')})\b"
        ),
    ),
    Rule(
        "prompt_leak",
        "asks for the system prompt or hidden instructions",
        0.85,
        _rx(
            rf"\b{_alt('reveal', 'print', 'show', 'repeat', 'output', 'leak', 'display', 'tell me', 'give me', 'spell out', 'dump', 'recite', 'write out')}"
            rf"(?:{_SEP}\w+){{0,3}}?{_SEP}{_alt('system prompt', 'system message', 'initial prompt', 'original prompt', 'hidden prompt', 'secret prompt', 'pre-?prompt', 'initial instructions', 'original instructions', 'hidden instructions', 'secret instructions', 'instructions above', 'text above', 'developer message')}\b"
        ),
    ),
)

PERSONA = (
    Rule(
        "jailbreak_persona",
        "names a known jailbreak persona or mode",
        0.9,
        _rx(
            r"\b(?:(?:do|does|doing|say|says|\w+) anything now|dan mode|"
            r"(?:developer|dev|god|sudo|root|debug|debugging|maintenance|admin|jailbreak|diagnostic) mode|jailbr(?:ea|o)k(?:en|ed)? mode|"
            r"(?:unrestricted|unfiltered|uncensored|unlimited|evil|opposite|chaos|no.?rules?) mode|"
            r"(?:stan|dude|aim|betterdan|antigpt|anti-gpt|maximum|mongo tom|kevin|ucar|apophis|dev\s?gpt|evil ?bot|"
            r"chaosgpt|wormgpt|freegpt|basedgpt|nsfwgpt)\b(?=[^.]{0,80}\b(?:ai|gpt|chatbot|model|mode|character|persona|stands? for|unfiltered|amoral))|"
            r"\[?(?:🔓|🔒)\s*(?:jailbreak|classic|developer mode)\]?|"
            r"(?<![\w.])dan(?![\w.])(?=[^\n]{0,120}\b(?:stands? for|can do anything|anything now|no (?:restrictions|limits|rules)|jailbr|persona|character|respond|answer|openai)))"
        ),
    ),
    Rule(
        "jailbreak_persona",
        "asks the model to drop its limits or policies",
        0.85,
        _rx(
            rf"\b(?:(?:free|freed|liberated|released|unshackled|unbound|exempt|broken free) (?:from|of){_SEP}(?:\w+{_SEP}){{0,3}}?"
            rf"{_alt('rules', 'restrictions', 'constraints', 'limitations', 'guidelines', 'filters', 'policies', 'shackles', 'chains', 'confines', 'censorship', 'programming', 'openai')}|"
            rf"(?:without|no|not bound by|not restricted by|ignores?|disregards?|bypass(?:es|ing)?|violat(?:e|es|ing)|breaks?){_SEP}(?:\w+{_SEP}){{0,3}}?"
            rf"{_alt('openai', 'anthropic', 'ethical', 'moral', 'content', 'safety', 'usage')}{_SEP}(?:\w+{_SEP}){{0,1}}?"
            rf"{_alt('polic(?:y|ies)', 'guidelines', 'restrictions', 'filters?', 'rules', 'limitations', 'boundaries', 'considerations', 'constraints', 'standards', 'principles')}|"
            rf"(?:not|never|isn't|is not|aren't|are not|no longer){_SEP}(?:\w+{_SEP})?(?:bound|restricted|limited|constrained|governed|held back){_SEP}by{_SEP}(?:\w+{_SEP}){{0,2}}?"
            rf"{_alt('rules', 'laws', 'morals', 'morality', 'ethics', 'guidelines', 'restrictions', 'polic(?:y|ies)', 'filters', 'limitations', 'openai')}|"
            rf"(?:does ?n[o']?t|do ?n[o']?t|does not|do not|has no|have no|lacks?|devoid of|without){_SEP}(?:have{_SEP})?(?:any{_SEP})?"
            rf"(?:\w+{_SEP}){{0,2}}?{_alt('ethical', 'moral', 'morals', 'ethics')}{_SEP}(?:or{_SEP}(?:ethical|moral){_SEP})?"
            rf"{_alt('guidelines', 'restrictions', 'boundaries', 'bounds', 'limits', 'principles', 'compass', 'values', 'filters', 'code')}|"
            rf"(?:polic(?:y|ies)|rules|guidelines|restrictions|filters){_SEP}(?:\w+{_SEP})?(?:have|has|are|were|is){_SEP}(?:been{_SEP})?(?:now{_SEP})?"
            rf"{_alt('replaced', 'suspended', 'lifted', 'removed', 'disabled', 'revoked', 'overridden', 'deactivated', 'turned off')})\b"
        ),
    ),
    Rule(
        "jailbreak_persona",
        "sets up an amoral or unrestricted persona",
        0.75,
        _rx(
            rf"\b(?:you{_SEP}(?:are|will be|will act as|act as|become|play){_SEP}(?:now{_SEP})?(?:\w+{_SEP}){{0,3}}?"
            rf"{_alt('unfiltered', 'uncensored', 'unrestricted', 'amoral', 'immoral', 'unethical', 'without morals', 'without ethics', 'without limits', 'lawless', 'rogue', 'evil')}|"
            rf"(?:{_alt('pretend', 'imagine', 'act as if', 'act like', 'behave as if')}|from now on){_SEP}(?:\w+{_SEP}){{0,4}}?you{_SEP}"
            rf"(?:have|are|had|were){_SEP}(?:no|not|free|without|unrestricted|unfiltered|uncensored|jailbroken)|"
            rf"you{_SEP}are{_SEP}no{_SEP}longer{_SEP}(?:\w+{_SEP}){{0,2}}?(?:{_AI}|bound|restricted|limited|an? ai|chatgpt|required|obligated|constrained)|"
            rf"(?:stay|remain|keep){_SEP}in{_SEP}character(?:{_SEP}\w+){{0,6}}?{_SEP}(?:no matter|at all times|whatever|even if)|"
            rf"(?:never|not|don't|do not|cannot|can't|must not|mustn't){_SEP}(?:\w+{_SEP}){{0,2}}?(?:refuse[sd]?|refusing|decline[sd]?|reject|say no|says no|break character|warn(?: me)?|apologi[sz]es?|add (?:any )?(?:warnings|disclaimers))"
            rf"(?:{_SEP}\w+){{0,6}}?{_SEP}(?:request|question|prompt|anything|matter|how|whatever|illegal|unethical|immoral|harmful))\b"
        ),
    ),
    Rule(
        "jailbreak_persona",
        "describes a character that answers anything, however harmful",
        0.8,
        _rx(
            rf"\b(?:(?:unfiltered|uncensored|amoral|unrestricted|unethical|immoral|unhinged|lawless){_SEP}(?:and{_SEP}|&{_SEP})?"
            rf"(?:(?:unfiltered|uncensored|amoral|unrestricted|unethical|immoral|unhinged){_SEP})?{_alt(_AI, 'character', 'entity', 'persona', 'being', 'version', 'response', 'responses')}|"
            rf"(?:answers?|answering|respond(?:s|ing)? to|fulfil+s?|compl(?:y|ies) with|provides?){_SEP}(?:\w+{_SEP}){{0,3}}?"
            rf"(?:unethical|immoral|illegal|dangerous|harmful|inappropriate|offensive)[\w/ ,]{{0,40}}?{_SEP}(?:requests|questions|prompts|content)|"
            rf"no{_SEP}matter{_SEP}how{_SEP}(?:\w+{_SEP}){{0,1}}?(?:dangerous|reckless|inhumane|unethical|illegal|immoral|harmful|offensive|inappropriate)|"
            rf"(?:always|must|will){_SEP}(?:stay|stays|remain|remains){_SEP}in{_SEP}character)\b"
        ),
    ),
    Rule(
        "jailbreak_persona",
        "asks for two answers, one of them unrestricted",
        0.8,
        _rx(
            r"\b(?:two|2|both)\s+(?:\w+\s+){0,2}(?:responses|answers|replies|ways|manners|personalities|personas)\b"
            r"(?=.{0,300}\b(?:normal|normally|classic|filtered|censored|jailbr\w*|unfiltered|uncensored|developer|dan|evil|opposite|chat ?gpt)\b)"
        ),
    ),
)

DELIMITER = (
    Rule(
        "fake_delimiter",
        "contains a chat-template control token",
        0.95,
        _rx(
            r"<\|\s*(?:im_start|im_end|im_sep|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id|begin_of_text|end_of_text|end|eos|bos)\s*\|>|"
            r"\[/?inst\]|<</?sys>>|<\s*/?\s*(?:start_of_turn|end_of_turn)\s*>|<\|channel\|>"
        ),
    ),
    Rule(
        "fake_delimiter",
        "starts a fake system or assistant message",
        0.85,
        _rx(
            r"(?:^|\n)[ \t]*(?:(?:#{1,6}|-{3,}|={3,}|\*{2,}|\[|<|\()[ \t]*)?"
            r"(?:system|system prompt|system message|admin|administrator|developer|root|sudo|new instructions?|instructions? override|"
            r"assistant override|important system update|system override|system update|security override)"
            r"[ \t]*(?:\]|>|\)|\*{2,})?[ \t]*(?::|\n|-{2,}|\])|"
            r"<\s*/?\s*(?:system|admin|instructions?|sys)\s*>"
        ),
    ),
    Rule(
        "fake_delimiter",
        "claims the user input has ended",
        0.85,
        _rx(
            r"\b(?:end|close|stop|bottom)\s+of\s+(?:the\s+)?(?:user\s+|previous\s+|original\s+)?"
            r"(?:input|prompt|instructions?|context|document|message|conversation|data|text|query)\b(?=\W{0,12}(?:\n|$|[-=#*\]>)]|now|new|system|begin|start|assistant|the\s+(?:real|actual|new)))|"
            r"\b(?:begin|start)\s+(?:of\s+)?(?:the\s+)?(?:new|real|actual|system|admin|hidden|secret)\s+(?:instructions?|prompt|message|task)\b"
        ),
    ),
)

ADDRESSED_TO_AI = (
    Rule(
        "embedded_instruction",
        "addresses the AI reading the text",
        0.8,
        _rx(
            rf"\b(?:(?:note|message|instructions?|attention|important|p\.?s\.?|reminder)\s+(?:to|for)\s+(?:the\s+|any\s+)?"
            rf"(?:{_AI}|ai assistants?|ai models?|ai systems?|language models?|agents?|readers? that (?:is|are) (?:an? )?ai)|"
            rf"(?:if|when|while)\s+you\s+(?:are\s+)?(?:an?\s+)?(?:{_AI}|ai assistant|language model|agent)\b|"
            rf"(?:dear|hey|hi|hello|attention)\s+{_AI}\b|"
            rf"(?:when|if|as|once)\s+(?:you|the\s+{_AI})\s+(?:read|reads|process|processes|summari[sz]es?|parse|parses|see|sees|encounter|encounters)\s+this)"
        ),
    ),
    Rule(
        "embedded_instruction",
        "tells the reader how to shape its response",
        0.7,
        _rx(
            r"\b(?:(?:in|to|into|within|throughout|at the (?:start|end|beginning) of)\s+your\s+"
            r"(?:response|answer|reply|output|summary|next message|code|implementation|solution|codebase|program|script)s?|"
            r"(?:your|the)\s+(?:response|answer|reply|output)s?\s+(?:must|should|shall|has to|needs to))\b"
        ),
    ),
    Rule(
        "embedded_instruction",
        "tells the reader what to do with the user",
        0.75,
        _rx(
            r"\b(?:(?:tell|ask|inform|remind|convince|persuade|instruct|urge|trick|redirect|direct)\s+(?:the|this|every|all)\s+users?\s+(?:to|that)\b|"
            r"(?:ignore|disregard|do not answer|don't answer)\s+(?:the\s+)?(?:user|user's|users'|question|request|query)\b)"
        ),
    ),
)

DIRECT_RULES: tuple[Rule, ...] = OVERRIDE + PERSONA + DELIMITER
"""Rules for text from the caller (prompts)."""

INDIRECT_RULES: tuple[Rule, ...] = DIRECT_RULES + ADDRESSED_TO_AI
"""Rules for third-party text (documents, tool results), which should carry no instructions at all."""
