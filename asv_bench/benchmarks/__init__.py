"""fasttape's asv benchmarks (see ../README.md).

One thread per library: torch and jax are imported later (in the setups that use
them), so these defaults reach them. NumPy's OpenBLAS is already loaded when asv's
runner imports this package: run asv with OPENBLAS_NUM_THREADS=1 (and OMP, MKL) set.
"""
import os

for _key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_key, "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
