"""The Python client: `from pilothouse import Pilothouse` for the management API, and `pilothouse.prompts.get`
(`prompt_fetch`) to use a prompt version in your own code. The gateway itself is used with any OpenAI client.

Importing it is light (no httpx until a client is made): `import pilothouse` and the CLI's start-up load it.
"""

from pilothouse.sdk.client import Pilothouse, PilothouseError

__all__ = ["Pilothouse", "PilothouseError"]
