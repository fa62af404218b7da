"""Finding provider classes (built in, or plugins through the `pilothouse.providers` entry point group)
and building one provider instance per deployment."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from pilothouse.config import ConfigError, Deployment, Settings
from pilothouse.gateway.providers.base import Provider
from pilothouse.gateway.providers.redact import remember_deployment

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


def provider_class(name: str) -> Any:
    if name in _BUILTIN:
        return _load(_BUILTIN[name])
    for ep in entry_points(group="pilothouse.providers"):
        if ep.name == name:
            return ep.load()
    known = sorted(set(_BUILTIN) | {ep.name for ep in entry_points(group="pilothouse.providers")})
    raise ConfigError(f"unknown provider {name!r}: installed providers are {', '.join(known)}")


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
