"""The tests file schema (validation errors name the case and field), the runner with a fake executor,
and the JUnit XML report."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from pilothouse.config import Deployment, ModelEntry, Settings
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pipeline import Pipeline
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.principal import Principal
from pilothouse.prompts.registry.push import push_files
from pilothouse.prompts.registry.resolver import PromptResolver
from pilothouse.prompts.testing.assertions import Execution
from pilothouse.prompts.testing.gateway_executor import GatewayExecutor
from pilothouse.prompts.testing.junit import to_junit_xml
from pilothouse.prompts.testing.runner import CaseResult, ExecutionFailed, run_suite
from pilothouse.prompts.testing.scenarios import (
    Case,
    ScenarioFileError,
    load_cases_file,
    parse_cases,
    parse_cases_text,
)
from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project
from pilothouse.store.traces import get_trace
from pilothouse.tracing.sink import StoreSink

GOOD = """
- name: greeting
  description: says hello back
  variables: {name: Ada}
  assert:
    - contains: {value: hello, ignore_case: true}
    - max_tokens: 20
- name: follow-up
  variables: {name: Bob}
  messages:
    - "and again?"
    - {role: assistant, content: "Hello"}
  assert:
    - regex: ".+"
"""


def problems_of(data: object) -> list[str]:
    with pytest.raises(ScenarioFileError) as info:
        parse_cases(data, source="t.tests.yaml")
    assert str(info.value).startswith("t.tests.yaml is not a valid tests file")
    return [str(p) for p in info.value.problems]


# -- schema ----------------------------------------------------------------------------------------------


def test_a_valid_file() -> None:
    cases = parse_cases_text(GOOD)
    assert [c.name for c in cases] == ["greeting", "follow-up"]
    assert cases[0].variables == {"name": "Ada"} and cases[0].description == "says hello back"
    assert len(cases[0].assertions) == 2
    assert cases[1].messages == [{"role": "user", "content": "and again?"}, {"role": "assistant", "content": "Hello"}]


def test_cases_under_a_cases_key_and_default_names() -> None:
    cases = parse_cases({"cases": [{"variables": {"q": "x"}}, {"assert": [{"regex": "."}]}]})
    assert [c.name for c in cases] == ["case-1", "case-2"]
    assert cases[0].assertions == []  # no assertions: the case passes when the call succeeds


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("just text", ["(top level): expected a list of cases, or a mapping with a 'cases' list"]),
        ([], ["cases: the file has no cases"]),
        (
            {"cases": [{"name": "a"}], "defaults": {}},
            ["(top level): unknown key(s) defaults; the file holds only 'cases'"],
        ),
        (["x"], ["cases[0]: a case must be a mapping with name, variables, assert; got str"]),
        (
            [{"name": "a", "asserts": []}],
            ["cases[0]: unknown key(s) asserts; allowed: assert, description, messages, name, variables"],
        ),
        ([{"name": ""}], ["cases[0].name: must be a non-empty string, got ''"]),
        ([{"name": "a"}, {"name": "a"}], ["cases[1].name: 'a' is also the name of cases[0]"]),
        ([{"variables": ["q"]}], ["cases[0].variables: must be a mapping of variable names to values, got list"]),
        (
            [{"messages": "hi"}],
            ["cases[0].messages: must be a list of user turns (strings) or {role, content} objects, got str"],
        ),
        (
            [{"messages": [{"role": "robot", "content": "x"}]}],
            ["cases[0].messages[0].role: must be one of assistant, developer, system, user, got 'robot'"],
        ),
        ([{"messages": [{"role": "user", "content": 3}]}], ["cases[0].messages[0].content: must be a string, got int"]),
        ([{"messages": [7]}], ["cases[0].messages[0]: must be a string or a {role, content} object, got int"]),
        (
            [{"assert": {"contains": "x"}}],
            ["cases[0].assert: must be a list of one-key mappings like '- contains: text', got dict"],
        ),
        (
            [{"assert": [{"contains": "x", "regex": "y"}]}],
            ["cases[0].assert[0]: must be a mapping with exactly one kind"],
        ),
        ([{"assert": [{"contain": "x"}]}], ["cases[0].assert[0].contain: unknown assertion 'contain'; known: "]),
        ([{"assert": [{"regex": "("}]}], ["cases[0].assert[0].regex: invalid regular expression '('"]),
        (
            [{"assert": [{"max_tokens": 0}]}],
            ["cases[0].assert[0].max_tokens: the value must be a positive integer, got 0"],
        ),
    ],
)
def test_each_problem_is_located(data: object, expected: list[str]) -> None:
    found = problems_of(data)
    assert len(found) == len(expected), found
    for got, want in zip(found, expected, strict=True):
        assert got.startswith(want), got


def test_all_problems_are_reported_at_once() -> None:
    found = problems_of(
        [
            {"name": "ok", "assert": [{"contains": "x"}]},
            {"name": "bad", "variables": 3, "assert": [{"max_latency_ms": -5}, {"json_schema": {"type": "nope"}}]},
        ]
    )
    assert [p.split(":")[0] for p in found] == [
        "cases[1].variables",
        "cases[1].assert[0].max_latency_ms",
        "cases[1].assert[1].json_schema",
    ]


def test_yaml_syntax_errors_give_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.tests.yaml"
    path.write_text("- name: a\n  variables: {q: [unclosed\n", encoding="utf-8")
    with pytest.raises(ScenarioFileError) as info:
        load_cases_file(path)
    assert info.value.source == str(path)
    assert str(info.value.problems[0]).startswith("line 3, column 1: YAML syntax error")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioFileError, match="cannot read it"):
        load_cases_file(tmp_path / "nope.tests.yaml")


# -- runner ----------------------------------------------------------------------------------------------


class FakeExecutor:
    """Answers from a table keyed by case name; a missing entry is a failed call."""

    def __init__(self, answers: dict[str, str], version: int = 3) -> None:
        self.answers = answers
        self.version = version
        self.calls: list[str] = []

    async def __call__(self, case: Case) -> Execution:
        self.calls.append(case.name)
        if case.name not in self.answers:
            raise ExecutionFailed("422: missing variable 'name'", trace_id="tr-fail")
        text = self.answers[case.name]
        return Execution(
            output=text,
            output_tokens=len(text.split()),
            latency_ms=100.0 + len(self.calls),
            cost_usd=Decimal("0.0001"),
            trace_id=f"tr-{case.name}",
            prompt_version=self.version,
        )


SUITE = """
- name: pass-all
  variables: {name: a}
  assert: [{contains: hello}, {max_tokens: 5}]
- name: fail-one
  variables: {name: b}
  assert: [{contains: hello}, {regex: "^\\\\d+$"}]
- name: call-fails
  variables: {}
  assert: [{contains: hello}]
"""


async def run(answers: dict[str, str], seen: list[CaseResult] | None = None) -> tuple[Sequence[Case], object]:
    cases = parse_cases_text(SUITE)
    progress = seen.append if seen is not None else None
    return cases, await run_suite(cases, FakeExecutor(answers), target="greeter@3", progress=progress)


async def test_run_suite_checks_every_case_in_order() -> None:
    seen: list[CaseResult] = []
    cases = parse_cases_text(SUITE)
    executor = FakeExecutor({"pass-all": "hello there", "fail-one": "hello world"})
    suite = await run_suite(cases, executor, target="greeter@3", progress=seen.append)
    assert executor.calls == ["pass-all", "fail-one", "call-fails"]
    assert [r.name for r in seen] == executor.calls  # progress after each case
    assert (suite.total, suite.passed, suite.failed, suite.ok) == (3, 1, 2, False)
    assert suite.version == 3 and suite.target == "greeter@3"
    ok, failed, errored = suite.cases
    assert ok.passed and ok.trace_id == "tr-pass-all" and ok.reason() == ""
    assert not failed.passed and [o.passed for o in failed.outcomes] == [True, False]
    assert failed.reason().startswith("regex /^\\d+$/: no match")
    assert not errored.passed and errored.error == "422: missing variable 'name'" and errored.outcomes == []
    assert errored.trace_id == "tr-fail" and errored.reason() == "error: 422: missing variable 'name'"
    assert suite.mean_latency_ms() == 101.5
    assert suite.total_cost_usd() == Decimal("0.0002")
    as_dict = suite.to_dict()
    assert as_dict["passed"] == 1 and as_dict["total_cost_usd"] == "0.0002"
    assert as_dict["cases"][1]["assertions"][1]["passed"] is False
    assert as_dict["cases"][0]["execution"]["output"] == "hello there"


async def test_an_unknown_cost_makes_the_total_unknown() -> None:
    class NoPrice(FakeExecutor):
        async def __call__(self, case: Case) -> Execution:
            result = await super().__call__(case)
            return Execution(output=result.output, prompt_version=2)

    suite = await run_suite(parse_cases_text(SUITE)[:1], NoPrice({"pass-all": "hello"}), target="x@2")
    assert suite.total_cost_usd() is None and suite.mean_latency_ms() is None and suite.version == 2


# -- JUnit -----------------------------------------------------------------------------------------------


async def test_junit_xml_counts_failures_and_errors() -> None:
    cases = parse_cases_text(SUITE)
    executor = FakeExecutor({"pass-all": "hello there", "fail-one": "hello <world> & \x01 bell"})
    suite = await run_suite(cases, executor, target="greeter@3")
    xml = to_junit_xml(suite)
    root = ET.fromstring(xml)
    assert root.tag == "testsuites"
    (testsuite,) = root.findall("testsuite")
    assert testsuite.attrib["name"] == "greeter@3"
    assert (testsuite.attrib["tests"], testsuite.attrib["failures"], testsuite.attrib["errors"]) == ("3", "1", "1")
    by_name = {c.attrib["name"]: c for c in testsuite.findall("testcase")}
    assert set(by_name) == {"pass-all", "fail-one", "call-fails"}
    assert by_name["pass-all"].find("failure") is None and by_name["pass-all"].find("error") is None
    failure = by_name["fail-one"].find("failure")
    assert failure is not None and failure.attrib["type"] == "regex" and "no match" in (failure.text or "")
    out = by_name["fail-one"].find("system-out")
    assert out is not None and out.text == "hello <world> & \ufffd bell"  # escaped; the control char replaced
    error = by_name["call-fails"].find("error")
    assert error is not None and error.attrib["message"] == "422: missing variable 'name'"
    assert all(c.attrib["classname"] == "greeter@3" for c in by_name.values())


# -- the in-process executor -----------------------------------------------------------------------------


@pytest.fixture
def gateway_setup(store: Store, tmp_path: Path) -> Iterator[tuple[Gateway, StoreSink, Principal]]:
    """A gateway with the fake provider (priced) and the prompt registry, prompt `echo` v1 on it."""
    settings = Settings(
        include_default_models=False,
        models=[
            ModelEntry(
                name="fake-chat",
                deployments=[
                    Deployment(
                        provider="fake",
                        model="fake-1",
                        input_price_per_mtok=Decimal("2"),
                        output_price_per_mtok=Decimal("8"),
                    )
                ],
            )
        ],
    )
    resolver = PromptResolver(store)
    gateway = Gateway(settings, ProviderPool(settings), default_price_book(), resolver)
    sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    prompt = (
        "name: echo\nmodel: fake-chat\nmax_tokens: 20\nvariables:\n  who: {type: string}\n"
        'messages:\n  - role: user\n    content: "hello {{ who }}"\n'
    )
    with store.begin() as conn:
        project = create_project(conn, "exec")
        push_files(conn, project_id=project.id, files=[("echo.yaml", prompt)], actor="key_admin")
    yield gateway, sink, Principal("key_dev", project.id, "developer")
    sink.close()
    resolver.close()


async def test_the_gateway_executor_runs_and_traces_each_case(
    store: Store, gateway_setup: tuple[Gateway, StoreSink, Principal]
) -> None:
    gateway, sink, principal = gateway_setup
    cases = parse_cases_text(
        """
- name: ok
  variables: {who: Ada}
  messages: ["and Bob"]
  assert: [{contains: and Bob}, {max_tokens: 5}, {max_cost_usd: 0.001}]
- name: no-variable
  variables: {}
"""
    )
    executor = GatewayExecutor(Pipeline(gateway, sink), principal, "echo@1")
    suite = await run_suite(cases, executor, target="echo@1")
    ok, missing = suite.cases
    assert ok.passed, ok.reason()
    execution = ok.execution
    assert execution is not None and execution.output == "echo: and Bob"  # the fake echoes the last user turn
    assert execution.prompt_version == 1 and execution.output_tokens == 3 and execution.cost_usd is not None
    assert execution.latency_ms is not None and execution.finish_reason == "stop"
    assert not missing.passed and missing.error is not None and missing.error.startswith("422: prompt echo@1:")
    with store.connect() as conn:
        stored = get_trace(conn, principal.project_id, ok.trace_id or "")
        failed = get_trace(conn, principal.project_id, missing.trace_id or "")
    assert stored is not None and failed is not None
    assert (stored["name"], stored["tags"], stored["prompt_name"], stored["prompt_version"]) == (
        "prompt.test",
        ["prompt-test"],
        "echo",
        1,
    )
    assert stored["status"] == "ok" and stored["api_key_id"] == "key_dev"
    assert stored["session_id"] == failed["session_id"] == executor.session_id
    assert executor.session_id.startswith("prompt-test-")
    assert stored["spans"][0]["input"]["messages"][-1] == {"role": "user", "content": "and Bob"}
    assert failed["status"] == "error" and failed["spans"][0]["error"].startswith("prompt echo@1:")
