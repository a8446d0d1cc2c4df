"""Reading source files: bytes + content hash, and delimited tables.

Tables are parsed by pyarrow's CSV reader (the fast path). When that fails, or
a value it accepted is unusable, a slow per-line pass re-reads the bytes only
to find the first offending line and raises `DataFormatError` naming the file,
the 1-based line and the field. The slow pass never produces data.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from agenticrec.errors import DataFormatError

Kind = Literal["int", "float", "str"]

# Stand-in delimiter for multi-character separators such as MovieLens' "::".
_SUBSTITUTE = b"\x1f"


@dataclass(frozen=True)
class Source:
    """One source file, read whole.

    Attributes:
        path: where it was read from.
        data: its bytes.
        digest: SHA-256 of ``data`` (hex).
        size: ``len(data)`` in bytes.
        mtime_ns: modification time when read.
    """

    path: Path
    data: bytes
    digest: str
    size: int
    mtime_ns: int


def read_source(path: Path) -> Source:
    """Read ``path`` whole and hash it."""
    try:
        stat = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(f"cannot read file: {exc.strerror}", path=path) from exc
    return Source(
        path=path,
        data=data,
        digest=hashlib.sha256(data).hexdigest(),
        size=len(data),
        mtime_ns=stat.st_mtime_ns,
    )


@dataclass(frozen=True)
class Column:
    """A column to read from a delimited file.

    Attributes:
        name: its name in the header, or the name given to it for headerless files
            (this is the ``field`` named in errors).
        kind: how values are converted; ``str`` columns are kept as given.
    """

    name: str
    kind: Kind = "str"


def read_table(
    src: Source,
    columns: Sequence[Column],
    *,
    delimiter: str = ",",
    header: bool = True,
    names: Sequence[str] | None = None,
    encoding: str = "utf-8",
    quoting: bool = True,
) -> dict[str, np.ndarray | list[str]]:
    """Parse selected columns of a delimited text file.

    Args:
        src: the file.
        columns: the columns wanted; int columns come back as ``int64[n]``, float
            columns as ``float64[n]`` (finite values only), str columns as lists.
        delimiter: field separator; may be several characters (``"::"``).
        header: whether line 1 names the columns. Without a header, ``names``
            gives every column of the file in order.
        names: all column names of a headerless file.
        encoding: text encoding (``"utf-8"`` or ``"latin-1"``).
        quoting: whether ``"`` quotes fields (CSV); off for MovieLens' ``|``/``::``
            files, whose titles contain bare quotes.

    Raises:
        DataFormatError: naming the file, line and field of the first bad value.
    """
    data = src.data
    if data.startswith(b"\xef\xbb\xbf") and encoding == "utf-8":
        data = data[3:]
    sep = delimiter.encode(encoding)
    fast_sep = sep
    if len(sep) > 1:
        data = data.replace(sep, _SUBSTITUTE)
        fast_sep = _SUBSTITUTE
    all_names = list(names) if names is not None else None
    if header:
        all_names = _header(src, data, fast_sep, encoding, quoting, delimiter)
        missing = [c.name for c in columns if c.name not in all_names]
        if missing:
            raise DataFormatError(
                f"header has no column {missing[0]!r}; it reads as {all_names} "
                f"(expected {delimiter!r}-separated columns "
                f"{[c.name for c in columns]})",
                path=src.path,
                line=1,
                field=missing[0],
            )
    assert all_names is not None
    arrow_type = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(
                column_names=None if header else all_names,
                encoding=encoding,
                block_size=1 << 24,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=fast_sep.decode("latin-1"),
                quote_char='"' if quoting else False,
                newlines_in_values=False,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={c.name: arrow_type[c.kind] for c in columns},
                include_columns=[c.name for c in columns],
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        _locate(src, columns, all_names, delimiter, header, encoding, quoting)
        raise DataFormatError(f"cannot parse: {exc}", path=src.path) from exc
    out: dict[str, np.ndarray | list[str]] = {}
    for col in columns:
        values = table.column(col.name)
        if col.kind == "str":
            out[col.name] = values.to_pylist()
            continue
        arr = values.to_numpy()
        if col.kind == "float" and not np.all(np.isfinite(arr)):
            _locate(src, columns, all_names, delimiter, header, encoding, quoting)
            raise DataFormatError("non-finite number", path=src.path, field=col.name)
        out[col.name] = arr
    return out


def _header(
    src: Source,
    data: bytes,
    sep: bytes,
    encoding: str,
    quoting: bool,
    delimiter: str,
) -> list[str]:
    first = data.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = first.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"header is not valid {encoding}", path=src.path, line=1
        ) from exc
    if not text.strip():
        raise DataFormatError(
            f"empty header (expected {delimiter!r}-separated column names)",
            path=src.path,
            line=1,
        )
    return _split(text, sep.decode(encoding), quoting)


def _split(text: str, sep: str, quoting: bool) -> list[str]:
    if quoting:
        return next(csv.reader([text], delimiter=sep, strict=True))
    return text.split(sep)


def _locate(
    src: Source,
    columns: Sequence[Column],
    names: Sequence[str],
    delimiter: str,
    header: bool,
    encoding: str,
    quoting: bool,
) -> None:
    """Find the first malformed line and raise for it; return if none is found."""
    kinds = {c.name: c.kind for c in columns}
    n_fields = len(names)
    raw_sep = delimiter.encode(encoding)
    for lineno, raw in enumerate(src.data.split(b"\n"), start=1):
        if header and lineno == 1:
            continue
        raw = raw.rstrip(b"\r")
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw:
            continue
        try:
            line = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            index = raw[: exc.start].count(raw_sep)
            field = names[index] if index < n_fields else None
            raise DataFormatError(
                f"invalid {encoding} byte 0x{raw[exc.start]:02x} at column "
                f"{exc.start + 1}; re-save the file as {encoding}",
                path=src.path,
                line=lineno,
                field=field,
            ) from None
        try:
            fields = _split(line, delimiter, quoting)
        except csv.Error as exc:
            raise DataFormatError(
                f"malformed quoting: {exc}", path=src.path, line=lineno
            ) from None
        if len(fields) < n_fields:
            raise DataFormatError(
                f"line has {len(fields)} field(s), expected {n_fields} "
                f"{delimiter!r}-separated ({', '.join(names)}); is it truncated, "
                "or is the separator wrong?",
                path=src.path,
                line=lineno,
                field=names[len(fields)],
            )
        if len(fields) > n_fields:
            raise DataFormatError(
                f"line has {len(fields)} fields, expected {n_fields} "
                f"{delimiter!r}-separated ({', '.join(names)})",
                path=src.path,
                line=lineno,
            )
        for name, value in zip(names, fields, strict=True):
            kind = kinds.get(name)
            if kind == "int":
                _check_int(value, src, lineno, name)
            elif kind == "float":
                _check_float(value, src, lineno, name)


def _check_int(value: str, src: Source, line: int, field: str) -> None:
    try:
        int(value)
    except ValueError:
        raise DataFormatError(
            f"expected an integer, found {value!r}",
            path=src.path,
            line=line,
            field=field,
        ) from None


def _check_float(value: str, src: Source, line: int, field: str) -> None:
    try:
        number = float(value)
    except ValueError:
        raise DataFormatError(
            f"expected a number, found {value!r}", path=src.path, line=line, field=field
        ) from None
    if not math.isfinite(number):
        raise DataFormatError(
            f"expected a finite number, found {value!r}",
            path=src.path,
            line=line,
            field=field,
        )


def as_ids(values: np.ndarray | list[str]) -> np.ndarray:
    """Raw ids as ``int64`` when every value is an integer, else as ``str``."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        return values.astype(np.int64, copy=False)
    arr = np.asarray(values, dtype=str)
    try:
        ints = arr.astype(np.int64)
    except (ValueError, OverflowError):
        return arr
    # Only when nothing is lost: "007" stays a string id.
    return ints if np.array_equal(ints.astype(str), arr) else arr
