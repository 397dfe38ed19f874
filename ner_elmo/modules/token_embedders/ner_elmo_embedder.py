"""
The old module of the "ner_elmo" token embedder, now `ner_elmo.modules.token_embedders.ner_elmo`
(class `NerElmoTokenEmbedder`, formerly `ElmoLayersTokenEmbedder`). Kept only while
`ner_elmo/commands/ner_export.py` imports the old names from here; remove it when that import
moves to the new module. Nothing is registered here.
"""
from ner_elmo.modules.token_embedders.ner_elmo import NerElmoTokenEmbedder

ElmoLayersTokenEmbedder = NerElmoTokenEmbedder

__all__ = ["ElmoLayersTokenEmbedder"]
