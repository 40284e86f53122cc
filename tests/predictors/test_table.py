"""Table predictor: exact median, interpolation along one dim, nearest neighbour, misses."""

from __future__ import annotations

from pathlib import Path

import pytest

from predictors import get_predictor
from predictors.catalog import get_spec
from predictors.descriptors import CopyDesc, CopyKind, DType, GemmDesc, KernelDesc
from predictors.roofline import RooflinePredictor
from predictors.table import TablePredictor
from predictors.traces import read_rows, row_from_desc, write_rows

SPEC = get_spec("h100")
NAME = "_ZN2at6native29vectorized_elementwise_kernelILi4ENS0_11FillFunctorIfEENS_6detail5ArrayIPcLi1EEEEEviT0_T1_"
DEMANGLED = ("void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, "
             "at::detail::Array<char*, 1> >(int, at::native::FillFunctor<float>, at::detail::Array<char*, 1>)")


def gemm(m: int, n: int = 1024, k: int = 1024) -> GemmDesc:
    return GemmDesc(m, n, k, 1, DType.BF16, DType.BF16, DType.BF16, DType.F32)


def rows() -> list[dict[str, object]]:
    out = []
    for value in (100, 110, 300):  # three repeats: median 110
        out.append(row_from_desc(gemm(1024), value * 1000))
    out.append(row_from_desc(gemm(4096), 400_000))
    kernel = KernelDesc(DEMANGLED, grid=(1024, 1, 1), block=(128, 1, 1), bytes=1 << 20)
    out.append(row_from_desc(kernel, 7000))
    out.append(row_from_desc(CopyDesc(CopyKind.H2D_PINNED, 1 << 20), 40_000))
    return out


def test_exact_signature_is_the_median_of_repeats() -> None:
    table = TablePredictor(SPEC, rows())
    assert table.predict(gemm(1024)).duration_ns == 110_000
    assert table.predict(gemm(1024)).model == "table"


def test_mangled_query_matches_demangled_trace_name() -> None:
    table = TablePredictor(SPEC, rows())
    hit = table.predict_or_none(KernelDesc(NAME, grid=(1024, 1, 1), block=(128, 1, 1), bytes=1 << 20))
    assert hit is not None and hit.duration_ns == 7000


def test_interpolates_between_bracketing_points() -> None:
    table = TablePredictor(SPEC, rows())
    ns = table.predict(gemm(2048)).duration_ns  # halfway in log(m) between 110 us and 400 us
    assert ns == pytest.approx((110_000 * 400_000) ** 0.5, abs=1)


def test_nearest_neighbour_scaled_by_roofline_and_bounded() -> None:
    table = TablePredictor(SPEC, rows())
    near = table.predict_or_none(gemm(1024, n=1536))  # n off the table, within 4x
    roofline = RooflinePredictor(SPEC)
    expected = 110_000 * roofline.predict(gemm(1024, n=1536)).duration_ns / roofline.predict(gemm(1024)).duration_ns
    assert near is not None and near.duration_ns == pytest.approx(expected, abs=1)
    assert table.predict_or_none(gemm(1024, n=65536)) is None  # 64x away: no answer
    assert table.predict(gemm(1024, n=65536)).model == "roofline"  # fallback says who answered
    assert table.predict_or_none(CopyDesc(CopyKind.D2H_PINNED, 1 << 20)) is None  # other link


def test_label_real_and_file_round_trip(tmp_path: Path) -> None:
    for suffix in (".jsonl.zst", ".parquet", ".jsonl"):
        path = write_rows(rows(), tmp_path / f"h100{suffix}")
        assert read_rows(path) == rows()
        real = get_predictor("table", SPEC, table_path=str(path), label="real")
        assert real.predict(gemm(1024)) .model == "real"


def test_data_dir_per_gpu(tmp_path: Path) -> None:
    write_rows(rows(), tmp_path / "h100" / "suite.jsonl.zst")
    assert get_predictor("table", SPEC, data_dir=tmp_path).predict(gemm(1024)).duration_ns == 110_000
    other = get_predictor("table", get_spec("a100"), data_dir=tmp_path)
    assert other.predict(gemm(1024)).model == "roofline"  # another GPU's measurements never answer


def test_kernel_rows_with_and_without_bytes() -> None:
    """Profiler rows have no bytes: a query with bytes still finds them; rows with bytes win."""
    plain = row_from_desc(KernelDesc("kern", grid=(10, 1, 1), block=(64, 1, 1)), 5000)
    sized = row_from_desc(KernelDesc("kern", grid=(10, 1, 1), block=(64, 1, 1), bytes=1000), 6000)
    query = KernelDesc("kern", grid=(10, 1, 1), block=(64, 1, 1), bytes=1000)
    assert TablePredictor(SPEC, [plain]).predict(query).duration_ns == 5000
    assert TablePredictor(SPEC, [plain, sized]).predict(query).duration_ns == 6000
