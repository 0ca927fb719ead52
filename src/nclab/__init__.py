"""nclab: train, measure and compare neural collapse."""

from nclab.config import RunConfig, resolve
from nclab.train import train

__all__ = ["RunConfig", "resolve", "train"]
__version__ = "0.1.0"
