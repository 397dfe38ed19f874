"""
Print the entities of the `ner` predictor's JSON-lines output, one line per entity:

    python -m ner_elmo.show_entities predictions.jsonl

Each entity is shown with its label, its text and its character span in the input text.
"""
import argparse
import json
import sys
from typing import IO, Iterable


def format_predictions(lines: Iterable[str], out: IO[str]) -> int:
    """Write a readable listing of each prediction line to `out`; returns the entity count."""
    count = 0
    for number, line in enumerate(lines, start=1):
        result = json.loads(line)
        if "error" in result:
            out.write(f"line {number}: error: {result['error']}\n")
            continue
        out.write(f"line {number}: {result['text']}\n")
        for entity in result["entities"]:
            out.write(f"  {entity['label']:<6} {entity['text']!r} [{entity['start']}:{entity['end']}]\n")
            count += 1
        if not result["entities"]:
            out.write("  (no entities)\n")
    return count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("predictions", help="JSON lines written by `allennlp predict` with the ner predictor")
    args = parser.parse_args(argv)
    with open(args.predictions, encoding="utf-8") as lines:
        count = format_predictions(lines, sys.stdout)
    print(f"{count} entities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
