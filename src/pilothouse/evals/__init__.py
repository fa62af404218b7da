"""Evaluation: the metric registry (`evals.metrics`) that scores examples, used by prompt scenario tests and by
online evaluation of production traces."""
