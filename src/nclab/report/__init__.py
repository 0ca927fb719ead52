"""Figures and tables that read run directories only."""
