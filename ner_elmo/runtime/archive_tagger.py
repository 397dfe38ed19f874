"""
`ner_elmo.load("model.tar.gz")`: the Python API over an archive's `ner` predictor. Needs
allennlp (imported here); the archive is loaded through `ner_elmo.common.safe_archive`.
"""
import os
from typing import Any, List, Optional, Union

from ner_elmo.runtime.inputs import JsonDict
from ner_elmo.runtime.text_tagger import TextTagger


class ArchiveTagger(TextTagger):
    """
    Tags texts with an archive's `ner` predictor (the activation cache off, as the service
    loads it).

    # Parameters

    archive_file : the `model.tar.gz`.
    device : `str`, optional (default = `"cpu"`)
    trust_archive : `bool`, optional (default = `False`)
        Load an archive whose config names unregistered types (see `safe_archive`).
    batch_size, min_score, and the `ner` predictor's other arguments.
    """

    def __init__(
        self,
        archive_file: Union[str, os.PathLike],
        device: str = "cpu",
        trust_archive: bool = False,
        batch_size: int = 64,
        **predictor_args: Any,
    ) -> None:
        from ner_elmo.service.loading import load_serving_predictor

        cuda_device = -1 if device == "cpu" else int(device.split(":", 1)[1]) if ":" in device else 0
        self.predictor = load_serving_predictor(
            str(archive_file),
            cuda_device=cuda_device,
            predictor_args={"batch_size": batch_size, **predictor_args},
            trust_archive=trust_archive,
        )
        self.label_encoding = self.predictor.label_encoding

    def predict_batch_json(self, inputs: List[JsonDict], batch_size: Optional[int] = None) -> List[JsonDict]:
        if batch_size is not None:
            self.predictor._batch_size = batch_size
        return self.predictor.predict_batch_json(inputs)
