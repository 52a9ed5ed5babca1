"""The rule for model names, shared by the registry and the workflows that name models."""

import re
from typing import Final

MODEL_NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9._-]{0,63}$"
"""Lower-case letters, digits, ``.``, ``_`` and ``-``: names go into URLs and folder names."""

MODEL_NAME: Final = re.compile(MODEL_NAME_PATTERN)

__all__ = ["MODEL_NAME", "MODEL_NAME_PATTERN"]
