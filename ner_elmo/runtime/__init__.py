"""
What tagging text needs once a model is trained, without allennlp: reading inputs and writing
outputs (`inputs`), the bundle format (`bundle`), the network (`network`) and the tagger
(`tagger`, `ner_elmo.load`).
"""
