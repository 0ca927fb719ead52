"""nclab: train, measure and compare neural collapse.

`nclab.train(config)` and `nclab.resume(run_dir)` load the training code on first use, so commands that only
read run directories (plot, compare, visualize, runs) import nothing of it; `RunConfig` and `resolve` load
the config on first use, so `nclab --help` imports no pydantic model."""

from typing import Any

__all__ = ["RunConfig", "resolve", "resume", "train"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("RunConfig", "resolve"):
        import nclab.config as config

        globals().update(RunConfig=config.RunConfig, resolve=config.resolve)
        return globals()[name]
    if name in ("train", "resume"):
        import nclab.train as module

        globals().update(train=module.train, resume=module.resume)  # the functions, not the module
        return globals()[name]
    raise AttributeError(f"module 'nclab' has no attribute {name!r}")
