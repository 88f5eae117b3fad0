"""JSON Schema → grammar IR: `normalize.py` rewrites schema nodes, `emit.py` writes the rules.

Debug: `python -m structgen.frontend.json_schema FILE` prints the generated grammar.
"""

from .emit import SchemaGrammar, main, schema_to_grammar
from .normalize import Relaxation, load_schema

__all__ = ["Relaxation", "SchemaGrammar", "load_schema", "main", "schema_to_grammar"]
