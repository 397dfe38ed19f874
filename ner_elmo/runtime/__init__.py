"""
What tagging text needs once a model is trained, without allennlp: reading inputs and writing
outputs (`inputs`), the bundle format (`bundle`), the network (`network`) and the tagger
(`bundle_tagger`, with `tagger` in torch and `onnx_tagger` on onnxruntime; `load`, behind
`ner_elmo.load`).
"""
