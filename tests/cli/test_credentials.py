"""Where the CLI finds the owner key: the data directory as the server finds it (`pilothouse --data-dir`,
PILOTHOUSE_DATA_DIR, `data_dir` in pilothouse.toml, `pilothouse --config`), and a refusal that says where it looked
and how to get a key. Against a real `pilothouse up` whose data directory is not `./.pilothouse`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from pilothouse.cli import common
from pilothouse.cli.credentials import DEFAULT_DATA_DIR, RootOptions, find_api_key, find_data_dir
from pilothouse.cli.main import app
from tests.support.servers import RunningServer, start_server

runner = CliRunner()
CONFIG = """\
include_default_models = false
canary_check_interval_s = 0

[local]
preload = false

[[models]]
name = "fake-chat"
deployments = [{provider = "fake", model = "fake"}]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("credentials")
    config = root / "server.toml"
    config.write_text(CONFIG)
    srv = start_server(root / "srv-data", config=config)
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(common.console, "width", 250)
    monkeypatch.setattr(common.err_console, "width", 400)
    for name in ("PILOTHOUSE_URL", "PILOTHOUSE_API_KEY", "PILOTHOUSE_DATA_DIR", "PILOTHOUSE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), env=env)


def keys_of(result: Result) -> list[dict[str, object]]:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    return list(json.loads(result.stdout))


def owner_listed(result: Result) -> bool:
    return any(k["name"] == "bootstrap owner" for k in keys_of(result))


# ---------------------------------------------------------------------------------------------- the lookup


def test_data_dir_precedence_is_the_servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_data_dir() == find_data_dir(None, None)
    assert find_data_dir().path == DEFAULT_DATA_DIR and "no pilothouse.toml" in find_data_dir().source
    (tmp_path / "pilothouse.toml").write_text('data_dir = "from-toml"\n')
    assert find_data_dir().path == Path("from-toml")
    assert find_data_dir().source == "data_dir in pilothouse.toml"
    other = tmp_path / "other.toml"
    other.write_text('data_dir = "from-other"\nport = 7400\n')
    monkeypatch.setenv("PILOTHOUSE_CONFIG", str(other))
    assert find_data_dir().path == Path("from-other")
    assert find_data_dir(config=tmp_path / "pilothouse.toml").path == Path("from-toml")  # --config beats the env
    monkeypatch.setenv("PILOTHOUSE_DATA_DIR", "from-env")
    assert find_data_dir().path == Path("from-env")  # the environment beats the file, as for the server
    assert find_data_dir(Path("from-flag")).path == Path("from-flag")  # and the flag beats both
    (tmp_path / "bare.toml").write_text("port = 7400\n")
    monkeypatch.delenv("PILOTHOUSE_DATA_DIR")
    bare = find_data_dir(config=tmp_path / "bare.toml")
    assert bare.path == DEFAULT_DATA_DIR and "sets no data_dir" in bare.source


def test_the_key_file_is_read_from_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "srv"
    data.mkdir()
    (data / "admin_key").write_text("ph-saved\n")
    found = find_api_key(None, RootOptions(data_dir=data))
    assert found.key == "ph-saved" and found.from_file == data / "admin_key"
    given = find_api_key("ph-given", RootOptions(data_dir=data))
    assert given.key == "ph-given" and given.from_file is None
    missing = find_api_key(None, RootOptions(data_dir=tmp_path / "empty"))
    assert missing.key is None and missing.key_file == tmp_path / "empty" / "admin_key"


# ---------------------------------------------------------------------------------------------- against the server


@pytest.mark.slow
def test_data_dir_from_pilothouse_toml(server: RunningServer, tmp_path: Path) -> None:
    (tmp_path / "pilothouse.toml").write_text(f'data_dir = "{server.data_dir}"\n')
    assert owner_listed(cli("keys", "list", "--json", "--url", server.url))


@pytest.mark.slow
def test_data_dir_and_config_flags(server: RunningServer, tmp_path: Path) -> None:
    assert owner_listed(cli("--data-dir", str(server.data_dir), "keys", "list", "--json", "--url", server.url))
    elsewhere = tmp_path / "conf" / "mine.toml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(f'data_dir = "{server.data_dir}"\n')
    assert owner_listed(cli("--config", str(elsewhere), "keys", "list", "--json", "--url", server.url))
    env = {"PILOTHOUSE_DATA_DIR": str(server.data_dir), "PILOTHOUSE_URL": server.url}
    assert owner_listed(cli("keys", "list", "--json", env=env))


@pytest.mark.slow
def test_no_key_says_where_it_looked_and_how_to_get_one(server: RunningServer, tmp_path: Path) -> None:
    result = cli("keys", "list", "--url", server.url)
    assert result.exit_code == 1 and "Traceback" not in result.output
    err = result.stderr
    assert f"none saved at {tmp_path / '.pilothouse' / 'admin_key'}" in err
    assert "data directory from the default (no pilothouse.toml here)" in err
    assert "pilothouse up" in err and "--data-dir" in err and "PILOTHOUSE_API_KEY" in err
    assert "pilothouse keys create" not in err  # the old advice, which itself needs a key

    (tmp_path / "pilothouse.toml").write_text('data_dir = "wrong-dir"\n')
    err = cli("keys", "list", "--url", server.url).stderr
    assert f"none saved at {tmp_path / 'wrong-dir' / 'admin_key'}" in err
    assert "data_dir in pilothouse.toml" in err


@pytest.mark.slow
def test_a_rejected_saved_key_names_its_file(server: RunningServer, tmp_path: Path) -> None:
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "admin_key").write_text("ph-stale-key-from-another-store\n")
    result = cli("--data-dir", str(stale), "keys", "list", "--url", server.url)
    assert result.exit_code == 1
    assert "401" in result.stderr and f"the key saved at {stale / 'admin_key'}" in result.stderr


def test_a_missing_or_broken_config_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = cli("--config", str(tmp_path / "nope.toml"), "keys", "list", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2 and "nope.toml does not exist" in result.stderr
    (tmp_path / "pilothouse.toml").write_text("data_dir = [\n")
    result = cli("keys", "list", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2 and "invalid TOML" in result.stderr
    (tmp_path / "pilothouse.toml").write_text("data_dir = 3\n")
    assert "data_dir must be a string" in cli("keys", "list", "--url", "http://127.0.0.1:9").stderr
    # a key given makes the file irrelevant: the command goes on (and here finds no server)
    given = cli("keys", "list", "--url", "http://127.0.0.1:9", "--api-key", "ph-x")
    assert given.exit_code == 1 and "cannot reach" in given.stderr
