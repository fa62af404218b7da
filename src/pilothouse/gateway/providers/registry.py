"""Finding provider classes (built in, or plugins through the `pilothouse.providers` entry point group)
and building one provider instance per deployment.

A plugin registers a class under its provider name, for example in its `pyproject.toml`:

    [project.entry-points."pilothouse.providers"]
    mycloud = "mycloud_pilothouse:MyCloudProvider"

The class must subclass `pilothouse.gateway.providers.base.Provider` (implement `chat`, set `name` and the
capability flags it has; the base supplies every other method). A class that does not is refused with a
ConfigError when a deployment first uses it, rather than accepted on its method names: the gateway calls
`count_input_tokens`, `warm` and the rest directly, and the base class is what guarantees they exist.
"""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points
from typing import Any

from pilothouse.config import ConfigError, Deployment, Settings
from pilothouse.gateway.providers.base import Provider
from pilothouse.gateway.providers.redact import remember_deployment

GROUP = "pilothouse.providers"

_BUILTIN = {
    "fake": "pilothouse.gateway.providers.fake:FakeProvider",
    "local": "pilothouse.gateway.providers.local:LocalProvider",
    "openai": "pilothouse.gateway.providers.openai_compat:OpenAICompatProvider",
    "anthropic": "pilothouse.gateway.providers.anthropic:AnthropicProvider",
}


def _load(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    module = __import__(module_name, fromlist=[attr])
    return getattr(module, attr)


def provider_class(name: str) -> type[Provider]:
    """The provider class registered as `name`; ConfigError when none is, or it is not a Provider."""
    if name in _BUILTIN:
        target, loaded = _BUILTIN[name], _load(_BUILTIN[name])
    else:
        found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
        if not found:
            known = sorted(set(_BUILTIN) | {ep.name for ep in entry_points(group=GROUP)})
            raise ConfigError(f"unknown provider {name!r}: installed providers are {', '.join(known)}")
        target, loaded = found[0].value, found[0].load()
    if not (isinstance(loaded, type) and issubclass(loaded, Provider)):
        raise ConfigError(
            f"provider {name!r} ({target}) is not a subclass of pilothouse.gateway.providers.base.Provider; "
            "a provider plugin must subclass it (implement chat, set name and its capability flags)"
        )
    if inspect.isabstract(loaded):
        missing = ", ".join(sorted(loaded.__abstractmethods__))
        raise ConfigError(f"provider {name!r} ({target}) does not implement {missing}")
    return loaded


class ProviderPool:
    """One provider instance per deployment, created on first use and closed together."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # Keyed by identity: deployments live as long as the settings that hold them.
        self._instances: dict[int, Provider] = {}

    def get(self, deployment: Deployment) -> Provider:
        provider = self._instances.get(id(deployment))
        if provider is None:
            provider = provider_class(deployment.provider)(deployment, self._settings)
            remember_deployment(deployment)  # its key is redacted from upstream error text from now on
            self._instances[id(deployment)] = provider
        return provider

    def instances(self) -> list[Provider]:
        return list(self._instances.values())

    async def aclose(self) -> None:
        for provider in self._instances.values():
            await provider.aclose()
        self._instances.clear()
