"""
Small helpers the rest of the package shares. Standard library only: importable without
allennlp, torch or numpy.
"""
