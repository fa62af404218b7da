"""LLM-as-judge: a rubric scored by any gateway model (`rubric.RubricJudge`, metric `llm_judge`), the judge's
output parsed so that a malformed answer is retried and then reported as a failed judgement (`parse`), and the
way a judge reaches a model (`transport`: the server's pipeline in process, or the gateway over HTTP)."""
