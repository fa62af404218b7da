"""`coherence`: is the answer well organised and logically consistent, whatever its correctness?

The rubric judge (`rubric.py`) with a fixed rubric in the spirit of G-Eval's coherence criterion: the answer
reads as one whole, its sentences follow from each other, it does not contradict itself, and it stays on the
question. Every option of the rubric judge but the rubric itself can be set (`model`, `samples`, `aggregate`,
`threshold`, `retries`, `temperature`, `max_tokens`), and repeated judging reports agreement the same way.

Limits: it is as good as the judge model. The bundled SmolLM2-135M is far too small to judge coherence
reliably (its agreement with people on the related hallucination task is in bench/eval_meta.py); use a
stronger gateway model as `model`, and calibrate it against people (`pilothouse eval calibrate`) before
trusting its scores.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pilothouse.evals.judges.rubric import DEFAULT_JUDGE_MODEL, RubricJudge

__all__ = ["CRITERIA", "STEPS", "Coherence"]

CRITERIA = (
    "Coherence: the answer is well structured and well organised, each sentence follows logically from the ones "
    "before it, it never contradicts itself, and it stays on the question from start to end."
)
STEPS = [
    "Read the question and the answer.",
    "Check that the answer has a clear order: what it says first prepares what follows.",
    "Look for statements that contradict each other, non sequiturs and abrupt changes of subject.",
    "Score 5 for a clear, consistent, well ordered answer and 1 for a jumble of unconnected or contradictory "
    "statements.",
]


class Coherence(RubricJudge):
    name: ClassVar[str] = "coherence"

    def __init__(
        self,
        model: Any = DEFAULT_JUDGE_MODEL,
        samples: Any = 1,
        aggregate: Any = "mean",
        threshold: Any = 0.5,
        retries: Any = 2,
        temperature: Any = None,
        max_tokens: Any = 120,
        structured: Any = True,
    ) -> None:
        super().__init__(
            criteria=CRITERIA,
            steps=STEPS,
            model=model,
            samples=samples,
            aggregate=aggregate,
            threshold=threshold,
            retries=retries,
            temperature=temperature,
            max_tokens=max_tokens,
            structured=structured,
        )
        self.label = f"coherence ({self.model}, 1-5)"
