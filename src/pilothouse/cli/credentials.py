"""Where the CLI finds its API key, and where it says it looked when there is none.

The key is `--api-key` (or `PILOTHOUSE_API_KEY`), else the owner key `pilothouse up` saved in its data directory.
That directory is found the way the server finds it: `pilothouse --data-dir`, `PILOTHOUSE_DATA_DIR`, `data_dir` in
the configuration file (`pilothouse --config`, `PILOTHOUSE_CONFIG` or `./pilothouse.toml`), else `./.pilothouse`.
Only that one setting is read (with tomllib), not the whole configuration, so commands start fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path(".pilothouse")
KEY_FILE = "admin_key"


class CredentialsError(Exception):
    """The configuration file named cannot be read; the message says which and why."""


@dataclass(frozen=True, slots=True)
class RootOptions:
    """`pilothouse --data-dir DIR --config FILE COMMAND`: set by the root callback for the command that follows."""

    data_dir: Path | None = None
    config: Path | None = None


_root = RootOptions()


def set_root_options(options: RootOptions) -> None:
    global _root
    _root = options


def root_options() -> RootOptions:
    return _root


@dataclass(frozen=True, slots=True)
class DataDir:
    path: Path
    source: str
    """Where the path came from, for messages: `--data-dir`, `data_dir in pilothouse.toml`, ..."""


def config_file(explicit: Path | None) -> Path | None:
    """The configuration file the server would read: explicit, `PILOTHOUSE_CONFIG`, or `./pilothouse.toml`."""
    if explicit is not None:
        return explicit
    env = os.environ.get("PILOTHOUSE_CONFIG")
    if env:
        return Path(env)
    local = Path("pilothouse.toml")
    return local if local.exists() else None


def _data_dir_in(file: Path) -> str | None:
    import tomllib

    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CredentialsError(f"configuration file {file} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"cannot read {file}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CredentialsError(f"{file}: invalid TOML: {exc}") from None
    value = raw.get("data_dir")
    if value is not None and not isinstance(value, str):
        raise CredentialsError(f"{file}: data_dir must be a string, got {value!r}")
    return value


def find_data_dir(data_dir: Path | None = None, config: Path | None = None) -> DataDir:
    """The server's data directory, with the same precedence as `pilothouse up` (flag > environment > file)."""
    if data_dir is not None:
        return DataDir(data_dir, "--data-dir")
    env = os.environ.get("PILOTHOUSE_DATA_DIR")
    if env:
        return DataDir(Path(env), "PILOTHOUSE_DATA_DIR")
    file = config_file(config)
    if file is not None:
        value = _data_dir_in(file)
        if value:
            return DataDir(Path(value), f"data_dir in {file}")
        return DataDir(DEFAULT_DATA_DIR, f"the default ({file} sets no data_dir)")
    return DataDir(DEFAULT_DATA_DIR, "the default (no pilothouse.toml here)")


@dataclass(frozen=True, slots=True)
class KeyLookup:
    """The key found (or None), and enough about the search to explain a refusal."""

    key: str | None
    from_file: Path | None
    """The key file the key was read from; None when it was given (flag or environment) or not found."""
    data_dir: DataDir | None
    """Where the key file was sought; None when a key was given."""

    @property
    def key_file(self) -> Path | None:
        return None if self.data_dir is None else self.data_dir.path / KEY_FILE

    def missing(self) -> list[str]:
        """What to say when the server wants a key and none was sent: where the CLI looked, how to get one."""
        assert self.data_dir is not None and self.key_file is not None
        where = self.key_file.absolute()
        return [
            f"no API key: none given (--api-key, PILOTHOUSE_API_KEY) and none saved at {where} "
            f"(data directory from {self.data_dir.source})",
            "The first `pilothouse up` prints the bootstrap owner key and saves it in its data directory. If the "
            "server uses another one, name it: `pilothouse --data-dir DIR COMMAND`, PILOTHOUSE_DATA_DIR, or "
            "data_dir in pilothouse.toml (`pilothouse --config FILE`); or pass --api-key / set PILOTHOUSE_API_KEY.",
        ]


def find_api_key(explicit: str | None, options: RootOptions | None = None) -> KeyLookup:
    """`explicit` (from --api-key or PILOTHOUSE_API_KEY), else the saved owner key of the data directory."""
    if explicit:
        return KeyLookup(explicit, None, None)
    options = options or root_options()
    where = find_data_dir(options.data_dir, options.config)
    path = where.path / KEY_FILE
    try:
        key = path.read_text(encoding="utf-8").strip() or None
    except OSError:
        key = None
    return KeyLookup(key, path if key else None, where)
