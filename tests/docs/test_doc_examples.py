"""Every example of README.md and docs/*.md runs, so a page cannot drift from the code. One test per block,
named `page:line` (the line of its opening fence).

- ```python, ```bash/```sh/```shell and ```console blocks run against one `pilothouse up` with the bundled
  models on SQLite, in one folder, with the real CLI and SDK (tests/docs/doc_runner.py says exactly how). The pages
  run in the order of PAGES, and each block after the blocks before it that run in the same folder: the prompt
  walkthrough of docs/prompts.md comes first, and the other pages use what it made (the prompt `support-answer`,
  the folder `prompts/`). A block whose predecessor failed is skipped, naming it.
- ```toml blocks are Pilothouse configuration: they must validate as `Settings` (a wrong key fails).
- ```yaml blocks that start with `# path/NAME.yaml` or `# path/NAME.tests.yaml` are prompt or test files and must
  parse as such, ```markdown blocks with front matter are prompt files, other YAML and ```json must parse.
- ```text is output; a block without an info string fails.
- Exceptions are marked in the page, right before the block, `<!-- doc-test: skip: REASON -->` or
  `<!-- doc-test: args-only: REASON -->` (each command runs with `--help`, which must name every option the block
  uses), and are listed in EXCEPTIONS below, so adding one is a visible change here.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator

import httpx
import pytest
import yaml

from pilothouse.config import Settings
from pilothouse.prompts.registry.files import parse_prompt_file, parse_test_file
from pilothouse.prompts.registry.folder_state import STATE_FILE
from tests.docs.doc_runner import DocRunner, Outcome
from tests.docs.markdown_blocks import CONSOLE, KINDS, SHELL, Block, read_blocks
from tests.support.servers import REPO, start_server

PAGES = [
    "docs/prompts.md",
    "README.md",
    "docs/prompt-canary.md",
    "docs/cost-control.md",
    "docs/caching.md",
    "docs/security.md",
    "docs/guards-injection.md",
    "docs/guards-pii.md",
    "docs/guards-content.md",
    "docs/tools.md",
    "docs/audit.md",
    "docs/observability-sdk.md",
    "docs/explain.md",
    "docs/opentelemetry.md",
    "docs/architecture.md",
    "docs/traces-query.md",
    "docs/monitors.md",
    "docs/evaluation-metrics.md",
    "docs/datasets.md",
    "docs/evaluation.md",
    "docs/benchmarks.md",
    "docs/flows.md",
    "docs/rag.md",
    "docs/flow-agents.md",
    "docs/rag-retrieval.md",
    "docs/flow-graphs.md",
    "docs/rag-indexes.md",
    "docs/dashboard.md",
]
"""Every page, in the order its examples run."""

IN_REPO_ROOT = frozenset({"docs/benchmarks.md", "docs/guards-pii.md"})
"""Pages whose commands run in the repository root (they name `bench/...` and `.venv/bin/python`); the others run in
a fresh folder holding the server's data directory `.pilothouse`, as after `scripts/up`."""

EXCEPTIONS = {
    ("README.md", "skip", "scripts/up"),
    ("docs/prompts.md", "skip", "pilothouse up &"),
    ("docs/dashboard.md", "skip", "scripts/install-browser.sh"),
    ("docs/benchmarks.md", "args-only", ".venv/bin/python bench/gateway_overhead.py"),
    (
        "docs/benchmarks.md",
        "args-only",
        ".venv/bin/python bench/gateway_overhead.py --shape long --skip-litellm --wait-quiet 20 --retries 1",
    ),
    ("docs/benchmarks.md", "args-only", ".venv/bin/python bench/gateway_features.py --soak 120"),
    ("docs/benchmarks.md", "args-only", "OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/cache_bench.py"),
    ("docs/benchmarks.md", "args-only", ".venv/bin/python bench/cli_startup.py"),
    ("docs/guards-pii.md", "args-only", ".venv/bin/python bench/guard_pii_bench.py --runs 20"),
    ("docs/benchmarks.md", "args-only", ".venv/bin/python bench/guard_injection_bench.py --split holdout"),
    (
        "docs/flows.md",
        "args-only",
        'pilothouse flow run examples/flows/approval_demo.py:flow --input {"amount": 120} --json',
    ),
}
"""(page, marker, first command of the block) of every block that is not run as written."""

BLOCKS = [block for page in PAGES for block in read_blocks(REPO / page, page)]
RUN = [b for b in BLOCKS if b.marker is None and (b.kind == "python" or b.kind in SHELL or b.kind == CONSOLE)]
ARGS_ONLY = [b for b in BLOCKS if b.marker is not None and b.marker.kind == "args-only"]


def _ids(blocks: list[Block]) -> list[str]:
    return [b.id for b in blocks]


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocRunner]:
    work = tmp_path_factory.mktemp("docs-work")
    runner = DocRunner(
        work_dir=work,
        home=tmp_path_factory.mktemp("docs-home"),
        start_server=lambda data_dir: start_server(data_dir, timeout=180),
        cwd_for=lambda page: REPO if page in IN_REPO_ROOT else work,
    )
    yield runner
    runner.stop()


def run_in_order(runner: DocRunner, block: Block) -> Outcome:
    """The block's outcome, after running the blocks before it that share its folder (once each)."""
    folder = block.doc in IN_REPO_ROOT
    for earlier in RUN[: RUN.index(block)]:
        if (earlier.doc in IN_REPO_ROOT) != folder:
            continue
        outcome = runner.outcomes.get(earlier.id) or runner.run(earlier)
        if not outcome.ok:
            pytest.skip(f"{earlier.id} failed, and this block runs in the state it leaves")
    return runner.outcomes.get(block.id) or runner.run(block)


def test_every_page_is_run() -> None:
    pages = {"README.md", *(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md"))}
    assert set(PAGES) == pages, "add the page to PAGES (in the order its examples run)"


def test_every_block_says_what_it_is() -> None:
    unknown = [f"{b.id} ```{b.kind}" for b in BLOCKS if b.kind not in KINDS]
    assert not unknown, f"give these blocks one of the info strings {sorted(KINDS)} (`text` for output): {unknown}"


def test_the_exceptions_are_the_listed_ones() -> None:
    marked = {(b.doc, b.marker.kind, b.first_command) for b in BLOCKS if b.marker is not None}
    assert marked == EXCEPTIONS


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.parametrize("block", RUN, ids=_ids(RUN))
def test_example_runs(runner: DocRunner, block: Block) -> None:
    outcome = run_in_order(runner, block)
    assert outcome.ok, f"{block.id} ({block.kind}) failed:\n{outcome.output}"


@pytest.mark.parametrize("block", ARGS_ONLY, ids=_ids(ARGS_ONLY))
def test_long_command_takes_its_arguments(runner: DocRunner, block: Block) -> None:
    outcome = runner.check_args(block)
    assert outcome.ok, f"{block.id}: {outcome.output}"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.kind == "toml"], ids=lambda b: b.id)
def test_configuration_example_is_valid(block: Block) -> None:
    Settings.model_validate(tomllib.loads(block.text))


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.kind in ("yaml", "json", "markdown")], ids=lambda b: b.id)
def test_file_example_is_valid(block: Block) -> None:
    first = block.first_line
    if block.kind == "json":
        json.loads(block.text)
    elif block.kind == "markdown":
        assert first == "---", "a markdown block is a prompt file: front matter first"
        parse_prompt_file("example.md", block.text)
    elif first.startswith("# ") and first.endswith((".tests.yaml", ".tests.yml")):
        parse_test_file(first[2:], block.text)
    elif first.startswith("# ") and first.endswith((".yaml", ".yml")):
        parse_prompt_file(first[2:], block.text)
    else:
        yaml.safe_load(block.text)


# What the examples print and leave behind, where the text around them says so.


def _outcome(runner: DocRunner, page: str, first_line: str) -> Outcome:
    [block] = [b for b in RUN if b.doc == page and b.first_line.startswith(first_line)]
    outcome = run_in_order(runner, block)
    assert outcome.ok, outcome.output
    return outcome


def _in_order(text: str, *parts: str) -> None:
    at = 0
    for part in parts:
        found = text.find(part, at)
        assert found >= 0, f"{part!r} not found (in this order) in:\n{text}"
        at = found + len(part)


@pytest.mark.slow
@pytest.mark.model
def test_readme_openai_example_prints_what_it_says(runner: DocRunner) -> None:
    lines = _outcome(runner, "README.md", "from pathlib import Path").output.strip().splitlines()
    assert "CompletionUsage" in lines[0]
    assert "384" in lines
    assert "smollm2-135m" in lines[-1] and "all-minilm-l6-v2" in lines[-1]


@pytest.mark.slow
@pytest.mark.model
def test_prompt_walkthrough_does_what_its_comments_say(runner: DocRunner) -> None:
    page = "docs/prompts.md"
    _in_order(
        _outcome(runner, page, "mkdir prompts").output,
        "new version 1",
        "unchanged (v1)",
        "source updated, no new version (v1)",
    )
    assert "unchanged" in _outcome(runner, page, "pilothouse prompt pull prompts/").output
    assert "new version 2" in _outcome(runner, page, "sed -i.bak").output
    assert "tests created (2 cases)" in _outcome(runner, page, "cat > prompts/support-answer.tests.yaml").output
    assert "moved" in _outcome(runner, page, "pilothouse prompt promote").output

    work = runner.work_dir
    assert (work / "production" / "support-answer.yaml").read_text().endswith("# Owner: the support team\n")
    assert not (work / "prompts" / "support-answer.yaml.bak").exists()
    assert not (work / STATE_FILE).exists() and (work / "prompts" / STATE_FILE).is_file()
    assert "<testsuite" in (work / "report.xml").read_text()
    headers = {"Authorization": f"Bearer {runner.server.admin_key}"}
    with httpx.Client(base_url=runner.server.url, headers=headers, timeout=30) as http:
        shown = http.get("/api/prompts/support-answer").json()
        v1 = http.get("/api/prompts/support-answer/versions/1").json()
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert v1["source_text"].endswith("# Owner: the support team\n")  # the comment-only edit was kept


def test_pages_reach_the_server_only_through_the_url_the_tests_replace() -> None:
    """The runner points the examples at its server by replacing DOCS_URL; any other address would go elsewhere."""
    stray = [b.id for b in RUN if "127.0.0.1:" in b.text.replace("http://127.0.0.1:7300", "")]
    assert not stray, f"these blocks name another local address: {stray}"
