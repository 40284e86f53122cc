"""emulate: run an unmodified CUDA program on a host without a GPU, in virtual time."""

from emulator.run import RunResult, run_command

__version__ = "0.1.0"
__all__ = ["RunResult", "run_command", "__version__"]
