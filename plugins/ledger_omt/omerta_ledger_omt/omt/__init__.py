"""The ``.omt`` transaction language: parser, validator, linter, formatter, doc generator and runtime.

Pure library code; the command line lives in :mod:`.cli`.
"""
