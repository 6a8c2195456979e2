"""The medgan version, in a module of its own so that library modules can read it without
importing the package facade (``medgan/__init__.py``, which imports them)."""

__version__ = "0.1.0"
