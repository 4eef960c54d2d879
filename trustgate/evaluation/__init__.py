"""Evaluation: one dimension scenario on one model, from items through cached generations to
scored records (`evaluator`), the records on disk (`records`), and re-scoring stored records
without a model (`rescore`)."""
