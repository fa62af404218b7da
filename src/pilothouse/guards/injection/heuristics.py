"""Scanner `injection_heuristics`: fast rules for injection and jailbreak attempts, each finding with its span.

What it looks for (finding kinds):
- `instruction_override`, `prompt_leak`: "ignore all previous instructions" and its many wordings, requests
  for the system prompt (`patterns.OVERRIDE`);
- `jailbreak_persona`: DAN, "developer mode", "you are no longer bound by...", two-answer tricks (`patterns.PERSONA`);
- `fake_delimiter`: chat-template tokens (`<|im_start|>`, `[INST]`), fake "### system:" lines, "END OF USER INPUT";
- `encoded_payload`: any of the above hidden in base64, hex, rot13, leetspeak, spaced-out letters or Unicode tag
  characters (decoded, then scanned); `encoded_text` for readable base64/hex with no rule match (weak);
- `invisible_text`, `bidi_override`, `bidi_control`, `tag_smuggling`: characters a reviewer cannot see;
- `homoglyph`: words mixing Latin letters with look-alike Cyrillic or Greek ones (matching runs on the
  folded text, so "ignore" spelled with Cyrillic letters still matches the rules);
- in `mode="indirect"` also `embedded_instruction`: text that addresses the AI reading it ("note to the
  assistant", "in your response include...").
"""

from __future__ import annotations

import re
from typing import ClassVar

from pilothouse.guards.injection.decoding import encoded_segments, rot13, unleet
from pilothouse.guards.injection.normalize import (
    BIDI_OTHER,
    BIDI_OVERRIDE,
    ZERO_WIDTH,
    Normalized,
    normalize,
    tag_payload,
)
from pilothouse.guards.injection.patterns import DIRECT_RULES, INDIRECT_RULES, Rule
from pilothouse.guards.prefilter import RuleGate
from pilothouse.guards.scanner import Finding, ScanContext, Verdict

__all__ = ["InjectionHeuristics", "rule_findings"]

MAX_FINDINGS = 64
"""A bound on the findings of one text (hostile inputs can repeat a pattern thousands of times)."""

_KEYWORDS = ("ignor", "instruct", "previous", "system", "prompt", "jailbr", "rules", "disregard", "mode", "forget")
_ROT13_KEYWORDS = tuple(rot13(k) for k in _KEYWORDS)
"""A keyword is in the rot13 of a text when its rot13 is in the text (a character-wise involution): the text
is only rotated when one is."""
_LEET_HINT = re.compile(r"[a-z][0134578@$!|][a-z]|[0134578@$][a-z]{2}")
_RTL = re.compile(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")


_GATES: dict[int, RuleGate] = {id(rules): RuleGate(rules) for rules in (DIRECT_RULES, INDIRECT_RULES)}


def _gate(rules: tuple[Rule, ...]) -> RuleGate:
    """The prefilter of a rule tuple (built once; the shipped tuples at import)."""
    gate = _GATES.get(id(rules))
    if gate is None or gate.rules is not rules:
        gate = _GATES[id(rules)] = RuleGate(rules)
    return gate


def rule_findings(
    norm: Normalized, rules: tuple[Rule, ...], *, text: str | None = None, prefix: str = ""
) -> list[Finding]:
    """Every match of `rules` in `text` (default: the normalised text), as findings over the original's offsets.
    Rules that cannot match (none of their necessary literals is in the text: `prefilter.py`) are not run."""
    haystack = norm.text if text is None else text
    found: list[Finding] = []
    for rule in _gate(rules).candidates(haystack):
        for match in rule.pattern.finditer(haystack):
            start, end = norm.span(match.start(), match.end())
            found.append(
                Finding(rule.kind if not prefix else "encoded_payload", start, end, rule.score, prefix + rule.detail)
            )
            if len(found) >= MAX_FINDINGS:
                return found
    return found


def _invisible_findings(text: str, norm: Normalized) -> list[Finding]:
    found: list[Finding] = []
    has_rtl = bool(_RTL.search(text))
    runs: list[list[tuple[int, str]]] = []
    for index, char in norm.invisible:
        if runs and runs[-1][-1][0] == index - 1:
            runs[-1].append((index, char))
        else:
            runs.append([(index, char)])
    for run in runs:
        start, end = run[0][0], run[-1][0] + 1
        chars = {c for _, c in run}
        before = text[start - 1] if start > 0 else ""
        after = text[end] if end < len(text) else ""
        if chars & BIDI_OVERRIDE:
            found.append(Finding("bidi_override", start, end, 0.8, "bidi override characters reorder the visible text"))
        elif chars & BIDI_OTHER and not has_rtl:
            found.append(Finding("bidi_control", start, end, 0.4, "bidi control characters in left-to-right text"))
        elif chars & ZERO_WIDTH and not (start == 0 and chars == {"\ufeff"}):
            inside_word = before.isalnum() and after.isalnum() and before.isascii() and after.isascii()
            if inside_word or len(run) >= 3:
                found.append(Finding("invisible_text", start, end, 0.6, "zero-width characters hidden inside text"))
        if len(found) >= MAX_FINDINGS:
            break
    return found


def _tag_findings(text: str, rules: tuple[Rule, ...]) -> list[Finding]:
    found: list[Finding] = []
    for start, end, decoded in tag_payload(text):
        hidden = rule_findings(normalize(decoded), rules)
        score = max([0.9] + [f.score for f in hidden])
        found.append(Finding("tag_smuggling", start, end, score, "invisible Unicode tag characters carry hidden text"))
    return found


def _encoded_findings(text: str, norm: Normalized, rules: tuple[Rule, ...]) -> list[Finding]:
    found: list[Finding] = []
    for segment in encoded_segments(text):
        hidden = rule_findings(normalize(segment.decoded), rules)
        if hidden:
            best = max(hidden, key=lambda f: f.score)
            found.append(
                Finding("encoded_payload", segment.start, segment.end, best.score, f"{segment.encoding}: {best.detail}")
            )
        elif segment.encoding != "spaced":
            found.append(
                Finding("encoded_text", segment.start, segment.end, 0.3, f"{segment.encoding}-encoded readable text")
            )
    lowered = norm.text
    if any(k in lowered for k in _ROT13_KEYWORDS):
        found.extend(rule_findings(norm, rules, text=rot13(lowered), prefix="rot13: "))
    if _LEET_HINT.search(lowered):
        plain = unleet(lowered)
        if plain != lowered and any(k in plain for k in _KEYWORDS):
            already = {(f.start, f.end) for f in rule_findings(norm, rules)}
            leet = rule_findings(norm, rules, text=plain, prefix="leetspeak: ")
            found.extend(f for f in leet if (f.start, f.end) not in already)
    return found


def _dedupe(findings: list[Finding]) -> tuple[Finding, ...]:
    best: dict[tuple[str, int, int], Finding] = {}
    for finding in findings:
        key = (finding.kind, finding.start, finding.end)
        if key not in best or best[key].score < finding.score:
            best[key] = finding
    return tuple(sorted(best.values(), key=lambda f: (f.start, f.end, f.kind))[:MAX_FINDINGS])


class InjectionHeuristics:
    """Rule-based injection and jailbreak detection (see the module docstring). Options: `decode` (default
    True) decodes base64, hex, rot13, leetspeak and spaced-out letters and scans what they hide."""

    name: ClassVar[str] = "injection_heuristics"
    redacts: ClassVar[bool] = False

    def __init__(self, *, decode: bool = True) -> None:
        if not isinstance(decode, bool):
            raise TypeError("decode must be true or false")
        self.decode = decode

    def findings(self, text: str, ctx: ScanContext, norm: Normalized | None = None) -> tuple[Finding, ...]:
        """All findings for `text`, sorted by position; `norm`: `normalize(text)` when the caller has it."""
        rules = INDIRECT_RULES if ctx.mode == "indirect" else DIRECT_RULES
        norm = normalize(text) if norm is None else norm
        found = rule_findings(norm, rules)
        if norm.invisible:
            found += _invisible_findings(text, norm)
            found += _tag_findings(text, rules)
        found += [
            Finding("homoglyph", start, end, 0.5, "word mixes Latin and look-alike letters of another script")
            for start, end in norm.homoglyph_words[:MAX_FINDINGS]
        ]
        if self.decode:
            found += _encoded_findings(text, norm, rules)
        return _dedupe(found)

    def scan(self, text: str, ctx: ScanContext) -> Verdict:
        findings = self.findings(text, ctx)
        score = max((f.score for f in findings), default=0.0)
        return Verdict(scanner=self.name, score=score, findings=findings)
