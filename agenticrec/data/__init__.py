"""Real recommendation data: one `Dataset` type, loaders, filters and splits.

>>> from agenticrec import data
>>> ds = data.load()  # MovieLens latest-small, shipped with the package
>>> split = data.leave_one_out(ds, min_rating=4.0)
>>> cands = data.sample_candidates(split, n_negatives=99, seed=0)

Loading: `load` reads MovieLens ``u.data`` (ml-100k), ``ratings.dat`` (ml-1m),
``ratings.csv`` (latest releases), parquet interactions, RecBole/UniSRec atomic
files and Amazon Reviews 2023 JSONL, from a folder or any file in it. A bare
name is the shipped ``ml-latest-small`` or a folder searched in `search_dirs`
(``$AGENTICREC_DATA_DIR``, ``$AGENTICREC_SHARED_DATA``, ``./data``,
``../shared/data``). Parsed results are cached as ``.npz`` in `cache_dir`
(``$AGENTICREC_CACHE_DIR`` or ``~/.cache/agenticrec``), keyed by the sources'
size, mtime and SHA-256; ``load(..., cache=False)`` bypasses it.

Rules every loader follows (counts land in `Dataset.report`):

* interactions are sorted by user, then time, then source order; sources
  without timestamps (ml-1m-implicit parquet, UniSRec sequences) use file order
  or sequence position (``time_kind="order"``);
* rows repeating user, item *and* timestamp are dropped (first kept, counted);
  the same pair at another time is kept (counted as ``repeated_pairs``);
* items missing from the catalog are kept and appended to it with empty
  metadata; catalog items nobody touched stay in the catalog;
* users listed in a user file without interactions are counted, not indexed;
* a malformed row raises `agenticrec.errors.DataFormatError` naming the file,
  line and field; so does an empty, unreadable or missing file, or a folder
  where a file is expected (no ``csv``, decoding or OS error escapes raw);
* text files may end lines in LF, CRLF or CR (old Mac exports are read, not
  refused); an explicit ``format=`` wins over detection.

A dataset can load yet leave nothing to evaluate (every user has one
interaction, a single-item catalogue): check a split with `require_evaluable`
before scoring it (`Split.n_evaluable` counts the users it can score).
"""

from ._cache import cache_dir
from ._dataset import UNKNOWN_YEAR, Dataset, LoadReport
from ._loaders import EMBEDDED, FORMATS, Format, detect, load, search_dirs
from ._movielens import year_from_title
from ._splits import (
    Candidates,
    Split,
    dedupe,
    implicit,
    k_core,
    leave_one_out,
    require_evaluable,
    sample_candidates,
    sample_negatives,
    split_users,
    temporal_split,
)

__all__ = [
    "EMBEDDED",
    "FORMATS",
    "UNKNOWN_YEAR",
    "Candidates",
    "Dataset",
    "Format",
    "LoadReport",
    "Split",
    "cache_dir",
    "dedupe",
    "detect",
    "implicit",
    "k_core",
    "leave_one_out",
    "load",
    "require_evaluable",
    "sample_candidates",
    "sample_negatives",
    "search_dirs",
    "split_users",
    "temporal_split",
    "year_from_title",
]
