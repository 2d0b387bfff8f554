"""{{ cookiecutter.description }} (Omerta plugin `{{ cookiecutter.name }}`)."""

__version__ = "0.1.0"
