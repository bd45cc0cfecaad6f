"""The built-in vector chibi engine (the embedded default): spec -> SVG -> PNG, masks and exports."""

from generation.chibi.engine import MAX_SIZE, MIN_SIZE, ChibiEngine, check_size, describe

__all__ = ["MAX_SIZE", "MIN_SIZE", "ChibiEngine", "check_size", "describe"]
