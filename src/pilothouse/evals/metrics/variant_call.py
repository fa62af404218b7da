"""How a metric that needs a second answer reaches the variant under test.

Most metrics judge the answer they are given. A few need the same variant to answer another input as well
(`counterfactual_bias` asks it again with demographic terms swapped). Inside an experiment run the runner sets
`current_variant` for each item to a caller bound to that item and variant (experiments/calls.py,
`PipelineVariantCaller`): the call goes through the gateway like the item's own (budgets, cache, trace; source
`eval`) and its cost counts in the run's cost cap. Where there is no variant to call (scenario tests, outputs a
client-side function uploaded) `current_variant` is None and such metrics report the example as not judged.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Protocol

__all__ = ["VariantCallFailed", "VariantCaller", "current_variant"]


class VariantCallFailed(Exception):
    """The second call failed (refused, upstream error): the metric does not judge the example."""


class VariantCaller(Protocol):
    def rerun(self, rewrite: Callable[[str], str]) -> str:
        """The variant's answer to the item's input with `rewrite` applied to every text in it (the user text,
        each message's content, or each string variable); VariantCallFailed when the call fails."""
        ...


current_variant: ContextVar[VariantCaller | None] = ContextVar("pilothouse_variant_caller", default=None)
