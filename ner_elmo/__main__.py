"""`python -m ner_elmo`: the torch-only command line of bundles (`ner_elmo.cli`)."""
from ner_elmo.cli import main

main()
