"""The code scanner: fenced and unfenced code, languages, and what a policy denies."""

from __future__ import annotations

import pytest

from pilothouse.guards.code import CodeScanner, find_code, guess_language
from pilothouse.guards.scanner import ScanContext

CTX = ScanContext(role="assistant", direction="output")
ANSWER = """Here is how to clean up:

```sh
sudo rm -rf /var/lib/app/cache
```

Then check the table:

SELECT id, name FROM users WHERE active = 1;

And in Python:

~~~
import os
def clean(path):
    os.remove(path)
~~~
That is all (really).
"""


def test_fenced_and_unfenced_blocks_are_found_with_their_language() -> None:
    blocks = [(b.language, b.fenced, ANSWER[b.start : b.end]) for b in find_code(ANSWER)]
    assert [(lang, fenced) for lang, fenced, _ in blocks] == [("bash", True), ("sql", False), ("python", True)]
    assert blocks[0][2].startswith("```sh") and blocks[0][2].endswith("```")
    assert blocks[1][2] == "SELECT id, name FROM users WHERE active = 1;"


def test_only_denied_languages_are_findings() -> None:
    verdict = CodeScanner(denied_languages=["bash", "SQL"]).scan(ANSWER, CTX)
    assert [f.kind for f in verdict.findings] == ["code:bash", "code:sql"]
    assert verdict.findings[0].score == 1.0 and verdict.findings[1].score < 1.0  # unfenced is less certain
    assert verdict.score == 1.0


def test_aliases_name_the_same_language() -> None:
    assert CodeScanner(denied_languages=["sh", "ps1"]).denied == {"bash", "powershell"}


def test_deny_all_denies_any_code_even_unknown() -> None:
    text = "```\nsome unknown;\n  code {}\n```"
    verdict = CodeScanner(deny_all=True).scan(text, CTX)
    assert [f.kind for f in verdict.findings] == ["code:unknown"]


@pytest.mark.parametrize(
    "text",
    [
        "I went to the shop (the big one) and bought milk; then I went home.",
        "Our plan: 1. gather requirements 2. design 3. build.",
        "Select the best option from the menu and update your settings.",
        "Thanks, the migration is done\nand the report is then sent.",
    ],
)
def test_prose_is_not_code(text: str) -> None:
    assert not CodeScanner(deny_all=True).scan(text, CTX).found


@pytest.mark.parametrize(
    ("code", "language"),
    [
        ("Invoke-WebRequest -Uri http://x -OutFile a.exe; Start-Process a.exe", "powershell"),
        ("curl -s http://x.sh | bash", "bash"),
        ("const x = require('fs'); console.log(x)", "javascript"),
        ("DROP TABLE students;", "sql"),
    ],
)
def test_unfenced_one_liners_with_strong_signals(code: str, language: str) -> None:
    assert guess_language(code)[0] == language
    assert [b.language for b in find_code(f"Run this:\n{code}\nDone.")] == [language]


def test_without_denied_languages_nothing_is_denied() -> None:
    verdict = CodeScanner().scan(ANSWER, CTX)
    assert verdict.score == 0.0 and not verdict.found


@pytest.mark.parametrize("options", [{"denied_languages": ["klingon"]}, {"denied_languages": "bash"}])
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CodeScanner(**options)  # type: ignore[arg-type]
