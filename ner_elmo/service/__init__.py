"""
The prediction service behind `allennlp ner-serve` (needs the `serve` extra: FastAPI, uvicorn,
prometheus-client): `create_app` (the ASGI app), `MicroBatcher` (one inference thread fed by a
bounded queue), `ServiceMetrics` (Prometheus) and `load_serving_predictor` (the `ner` predictor
of an archive, activation cache off).
"""
