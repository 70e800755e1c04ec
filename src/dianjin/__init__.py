"""dianjin: the DianJin-R1 recipe for financial reasoning models, end to end."""

__version__ = "0.1.0"
