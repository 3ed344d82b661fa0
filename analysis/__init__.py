"""Bits & Bias: low-bit networks and the implicit bias of gradient descent, as code to read.

Import the module you need: `from analysis import quant, data, models, training`.
The map of modules is in README.md; the lessons under `lessons/` call into them.
"""

__version__ = "0.1.0"
