"""
Pure functions behind the reporting subcommands and the epoch-report callback: entity error
analysis (`error_analysis`), the files of `allennlp ner-report` (`report_files`), learning curves
(`learning_curves`), per-type metric tables (`type_metrics`) and the displaCy entity page
(`entity_html`); `figures` writes the PNGs. Nothing here imports allennlp, so each piece is
usable and testable on its own.
"""
