"""The fedpsy data dictionary (CDM v1): shipped YAML variable definitions and their loader."""

from schemas.dictionary.loader import load_dictionary
from schemas.dictionary.model import Dictionary, Variable

__all__ = ["Dictionary", "Variable", "load_dictionary"]
