"""The doc-example harness itself: how pages are read and how blocks run (no server: a stub address)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from pilothouse.config import Settings
from tests.docs.doc_runner import DocRunner
from tests.docs.markdown_blocks import Block, MarkdownError, Marker, commands, console_script, read_blocks
from tests.support.servers import RunningServer


def page(tmp_path: Path, text: str) -> list[Block]:
    path = tmp_path / "page.md"
    path.write_text(text)
    return read_blocks(path, "page.md")


def test_blocks_are_read_with_their_line_kind_and_marker(tmp_path: Path) -> None:
    blocks = page(
        tmp_path,
        "# Title\n\n```bash\necho hi\n```\n\n<!-- doc-test: skip: needs a GPU -->\n\n```python\nx = 1\n```\n"
        "````text\n```\n````\n```\nplain\n```\n",
    )
    assert blocks == [
        Block("page.md", 3, "bash", "echo hi\n"),
        Block("page.md", 9, "python", "x = 1\n", Marker("skip", "needs a GPU")),
        Block("page.md", 12, "text", "```\n"),
        Block("page.md", 15, "", "plain\n"),
    ]
    assert blocks[1].id == "page.md:9"


@pytest.mark.parametrize(
    "text",
    [
        "```bash\necho never closed\n",
        "<!-- doc-test: skip: why -->\nsome prose\n```bash\necho\n```\n",
        "<!-- doc-test: maybe: why -->\n```bash\necho\n```\n",
        "<!-- doc-test: skip -->\n```bash\necho\n```\n",
    ],
)
def test_a_page_the_tests_cannot_read_safely_is_an_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(MarkdownError):
        page(tmp_path, text)


def test_a_configuration_example_with_a_wrong_key_fails() -> None:
    with pytest.raises(ValidationError, match="retrys"):
        Settings.model_validate(tomllib.loads("[routing]\nretrys = 2\n"))


def test_console_blocks_run_their_dollar_lines_and_continuations() -> None:
    text = "$ pilothouse a \\\n    --b 1\noutput line\n$ pilothouse c   # note\nmore output\n"
    assert console_script(text) == "pilothouse a \\\n    --b 1\npilothouse c   # note\n"


def test_commands_join_continuations_and_drop_comments() -> None:
    script = "# a comment\nX=1 tool run \\\n  --flag 'a b'   # note\n\ntool --other\n"
    assert commands(script) == [["X=1", "tool", "run", "--flag", "a b"], ["tool", "--other"]]


@pytest.fixture
def runner(tmp_path: Path) -> DocRunner:
    """A runner whose server is a stub address: enough for blocks that do not call it."""
    stub = RunningServer("http://127.0.0.1:9", "", tmp_path, subprocess.Popen([sys.executable, "-c", ""]), tmp_path)
    stub.process.wait()
    home = tmp_path / "home"
    home.mkdir()
    return DocRunner(tmp_path, home, start_server=lambda _: stub, cwd_for=lambda _: tmp_path)


def test_shell_variables_of_a_page_stay_set_for_its_later_blocks(runner: DocRunner) -> None:
    first = runner.run(Block("a.md", 1, "bash", 'KEY_ID=$(echo key_1)\nexport TOKEN="t 2"\n'))
    assert first.ok, first.output
    later = runner.run(Block("a.md", 9, "console", '$ echo "$KEY_ID $TOKEN $PILOTHOUSE_URL"\nkey_1 ...\n'))
    assert later.output == "key_1 t 2 http://127.0.0.1:9\n"
    other_page = runner.run(Block("b.md", 1, "bash", 'echo "${KEY_ID:-unset}"\n'))
    assert other_page.output == "unset\n"


def test_a_failing_command_fails_its_block_and_is_named(runner: DocRunner) -> None:
    outcome = runner.run(Block("a.md", 1, "bash", "echo one\nfalse | cat\necho never\n"))
    assert not outcome.ok
    assert outcome.output.startswith("one\ndoc-test: ")  # pipefail: a pipeline fails with its failing command
    assert outcome.output.endswith("exited with 1 (line 2 of the block)\n")
    unset = runner.run(Block("a.md", 5, "bash", 'echo "$NOT_SET"\n'))
    assert not unset.ok and "NOT_SET: unbound variable" in unset.output


def test_python_blocks_of_a_page_share_a_namespace_and_name_the_page_line(runner: DocRunner) -> None:
    assert runner.run(Block("a.md", 10, "python", "import os\nx = 41\n")).ok
    outcome = runner.run(Block("a.md", 20, "python", "print(x + 1, os.environ['PILOTHOUSE_URL'])\n"))
    assert outcome.output == "42 http://127.0.0.1:9\n"
    failed = runner.run(Block("a.md", 30, "python", "y = 1\nraise RuntimeError('boom')\n"))
    assert not failed.ok and 'File "a.md", line 32' in failed.output and "RuntimeError: boom" in failed.output


def test_args_only_blocks_must_name_options_the_command_knows(runner: DocRunner, tmp_path: Path) -> None:
    (tmp_path / "tool.py").write_text(
        "import argparse\np = argparse.ArgumentParser()\np.add_argument('--rounds', type=int)\n"
        "p.add_argument('-n')\np.parse_args()\n"
    )
    known = Block("a.md", 1, "bash", f"{sys.executable} tool.py --rounds 3 -n 2   # slow\n")
    assert runner.check_args(known).ok, runner.check_args(known).output
    unknown = runner.check_args(Block("a.md", 1, "bash", f"{sys.executable} tool.py --rounds=3 --round 1 -r\n"))
    assert not unknown.ok and "['--round', '-r']" in unknown.output
    missing = runner.check_args(Block("a.md", 1, "bash", f"{sys.executable} no_such_tool.py\n"))
    assert not missing.ok and "exit 2" in missing.output
