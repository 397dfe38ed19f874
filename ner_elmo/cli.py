"""
`ner-elmo` (also `python -m ner_elmo`): a bundle's command line, with torch alone.

    ner-elmo predict BUNDLE INPUT.jsonl [--output-file F] [--batch-size N] [--device cpu] ...
    ner-elmo serve BUNDLE [--host 127.0.0.1] [--port 8000] [--device cpu] ...

The same loop, service, arguments and outputs as `allennlp ner-predict` and `allennlp ner-serve`
(`ner_elmo.runtime.lines`, `ner_elmo.service.serving`), for a bundle directory written by
`allennlp ner-export`; nothing of allennlp is imported. Archives need the allennlp commands.
"""
import argparse
import logging
import sys
from typing import List, Optional


def _bundle_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a bundle directory (allennlp ner-export)")
    parser.add_argument("--device", default="cpu", help='where the network runs: "cpu", "cuda", "cuda:1"')


def _tagger_or_exit(path: str, **kwargs):
    import ner_elmo
    from ner_elmo.runtime.bundle import BundleError, is_bundle

    if not is_bundle(path):
        raise SystemExit(
            f"ner-elmo: {path} is not a bundle directory; tag an archive with `allennlp ner-predict`/`ner-serve`, "
            "or export it first with `allennlp ner-export`"
        )
    try:
        return ner_elmo.load(path, **kwargs)
    except BundleError as error:
        raise SystemExit(f"ner-elmo: {error}") from None


def _predict(args: argparse.Namespace) -> None:
    from ner_elmo.runtime.lines import check_predict_arguments, run_predict

    try:
        check_predict_arguments(args)
    except ValueError as error:
        raise SystemExit(f"ner-elmo predict: {error}") from None
    run_predict(_tagger_or_exit(args.model, device=args.device, batch_size=args.batch_size), args)


class _Terminated(Exception):
    """SIGTERM, raised once uvicorn has answered the accepted requests and handed it back."""


def _raise_terminated(signum, frame) -> None:
    raise _Terminated()


def _serve(args: argparse.Namespace) -> None:
    import functools
    import signal

    from ner_elmo.service.serving import check_service_arguments, load_bundle, run_service

    try:
        check_service_arguments(args)
    except ValueError as error:
        raise SystemExit(f"ner-elmo serve: {error}") from None
    from ner_elmo.runtime.bundle import is_bundle

    if not is_bundle(args.model):
        raise SystemExit(f"ner-elmo serve: {args.model} is not a bundle directory (allennlp ner-export writes one)")
    try:
        # The bundle is loaded on the inference thread; a damaged one stops the service with its error.
        signal.signal(signal.SIGTERM, _raise_terminated)
        run_service(args, functools.partial(load_bundle, args, args.device), stop_signals=(_Terminated, KeyboardInterrupt))
    except (ImportError, OSError) as error:
        raise SystemExit(f"ner-elmo serve: {error}") from None


def main(argv: Optional[List[str]] = None) -> None:
    from ner_elmo.runtime.lines import add_predict_arguments
    from ner_elmo.service.serving import add_service_arguments

    parser = argparse.ArgumentParser(prog="ner-elmo", description=__doc__.strip().split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="tag a JSON-lines file with a bundle: one output line per input line")
    _bundle_argument(predict)
    add_predict_arguments(predict)
    predict.set_defaults(func=_predict)
    serve = commands.add_parser("serve", help="serve a bundle over HTTP, with micro-batching and metrics")
    _bundle_argument(serve)
    add_service_arguments(serve)
    serve.set_defaults(func=_serve)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(levelname)s - %(name)s - %(message)s")
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
