"""Read a results folder (docs/results-format.md) into dataframes, and merge HDR histograms.

One idea a module; everything is importable from `shop_loadtest.results`:

- `folder`: `load_run(dir) -> RunData`, a lenient reader of a (possibly partial) run folder;
- `histograms`: `hist` strings as sparse bucket `Counts`, merged exactly, read as percentiles;
- `scope`: `build_scope` slices a run by endpoint and stage, `windows` cuts it into windows;
- `files`: `write_atomic`, how every stage writes a file into a run folder; `numbers`:
  `number` reads one leniently, `rounded` writes one.

>>> run = load_run(Path("reports/flash-sale-20261126T203000Z"))  # doctest: +SKIP
>>> percentile_ms(merge_hist(run.intervals["hist"]), 95)  # doctest: +SKIP
231.423
"""

from shop_loadtest.results.exports import ExportFile, export_files
from shop_loadtest.results.files import write_atomic
from shop_loadtest.results.folder import (
    ERROR_COLUMNS,
    INTERVAL_COLUMNS,
    MACHINE_COLUMNS,
    MONITOR_COLUMNS,
    TICK_COLUMNS,
    RunData,
    load_run,
)
from shop_loadtest.results.histograms import (
    Counts,
    HistCache,
    counts_of,
    counts_percentile_ms,
    counts_percentiles_ms,
    counts_to_hist,
    decode_counts,
    dense_percentile_ms,
    empty_dense,
    merge_counts,
    merge_hist,
    percentile_ms,
    percentiles_ms,
)
from shop_loadtest.results.numbers import number, rounded
from shop_loadtest.results.scope import Scope, build_scope, windows

__all__ = [
    "ExportFile",
    "export_files",
    "ERROR_COLUMNS", "INTERVAL_COLUMNS", "MACHINE_COLUMNS", "MONITOR_COLUMNS",
    "TICK_COLUMNS", "Counts", "HistCache", "RunData", "Scope", "build_scope",
    "counts_of", "counts_percentile_ms", "counts_percentiles_ms", "counts_to_hist",
    "decode_counts", "dense_percentile_ms", "empty_dense", "load_run", "merge_counts",
    "merge_hist", "number", "percentile_ms", "percentiles_ms", "rounded", "windows",
    "write_atomic",
]
