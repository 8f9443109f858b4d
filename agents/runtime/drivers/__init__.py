"""Drivers: thin loops that move data between the same role components (serial, parallel)."""
