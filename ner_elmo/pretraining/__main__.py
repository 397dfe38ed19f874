"""`python -m ner_elmo.pretraining {train,prepare,perplexity,export} ...` (see `cli`)."""
from ner_elmo.pretraining.cli import main

if __name__ == "__main__":
    main()
