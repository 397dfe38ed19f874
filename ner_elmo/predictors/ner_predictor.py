"""
The old module of the "ner" predictor, now `ner_elmo.predictors.ner` (class `NerPredictor`).
Kept only while `ner_elmo/commands/ner_export.py` imports `NerPredictor` from here; remove it when
that import moves to the new module. Nothing is registered here.
"""
from ner_elmo.predictors.ner import NerPredictor

__all__ = ["NerPredictor"]
