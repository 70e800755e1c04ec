"""Placeholder: being written (number parsing shared by finqa and fincalc)."""
