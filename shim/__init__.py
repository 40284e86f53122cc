"""The timewarp shim: the C library loaded with LD_PRELOAD, its build glue and its ABI."""
