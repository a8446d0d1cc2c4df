"""Reading source files: bytes + content hash, and delimited tables.

This module is the reading boundary of every loader: `read_source` turns any
failure to read a file (missing, a folder, unreadable, not a regular file) into
`DataFormatError`, and the helpers here (`read_table`, `parse_int`,
`parse_number`, `text_lines`) turn malformed content into one too, naming the
file, the 1-based line and the field.

Tables are parsed by pyarrow's CSV reader (the fast path). When that fails, or
a value it accepted is unusable, a slow per-line pass re-reads the bytes only
to find the first offending line and raises `DataFormatError` naming the file,
the 1-based line and the field. The slow pass never produces data, and it
accepts exactly what pyarrow accepts (integers: optional ``-``, ASCII digits or
``0x`` hex, within int64; surrounding spaces ignored).

Line endings: delimited tables accept LF, CRLF and old Mac CR-only (``\r``)
endings, also mixed, exactly as pyarrow splits rows; line numbers count those
rows. Other text files (RecBole, JSONL, the MovieLens ``|`` files) accept LF and
CRLF, and a file holding CRs but no LF at all is read as CR-terminated; a lone
CR inside an LF file stays part of its line there.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import stat as stat_mod
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
    """Read ``path`` whole and hash it.

    Raises:
        DataFormatError: ``path`` is missing, a folder, not a regular file (a
            FIFO or device, never read so nothing blocks) or unreadable.
    """
    try:
        stat = path.stat()
        if stat_mod.S_ISDIR(stat.st_mode):
            raise DataFormatError("is a folder; expected a file", path=path)
        if not stat_mod.S_ISREG(stat.st_mode):
            raise DataFormatError("not a regular file", path=path)
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, PermissionError):
            reason += " (check the file's permissions)"
        raise DataFormatError(f"cannot read file: {reason}", path=path) from exc
    return Source(
        path=path,
        data=data,
        digest=hashlib.sha256(data).hexdigest(),
        size=len(data),
        mtime_ns=stat.st_mtime_ns,
    )


def universal_newlines(data: bytes) -> bytes:
    """CRLF and lone CR become LF (the rows pyarrow's CSV reader sees)."""
    if b"\r" not in data:
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def text_lines(src: Source, encoding: str = "utf-8") -> list[str]:
    """The lines of a text file (LF or CRLF; CR-only when it has no LF), decoded.

    Raises:
        DataFormatError: a byte is invalid in ``encoding`` (names the line).
    """
    data = src.data
    if b"\n" not in data and b"\r" in data:
        data = data.replace(b"\r", b"\n")
    if encoding == "utf-8":
        data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        raise DataFormatError(
            f"invalid {encoding} byte 0x{data[exc.start]:02x} at column "
            f"{exc.start - start + 1}; re-save the file as {encoding}",
            path=src.path,
            line=line,
        ) from None
    return [line.removesuffix("\r") for line in text.split("\n")]


def first_line(data: bytes) -> bytes:
    """The first line of ``data`` (any line ending), without a UTF-8 BOM."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    end = len(data)
    for mark in (b"\n", b"\r"):
        pos = data.find(mark, 0, end)
        if pos >= 0:
            end = pos
    return data[:end]


_INT64 = (-(2**63), 2**63 - 1)
_DECIMAL = re.compile(r"[+-]?[0-9]+")
_ARROW_INT = re.compile(r"-?[0-9]+|0[xX][0-9a-fA-F]+")
_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    re.IGNORECASE,
)


def parse_int(value: str, src: Source, line: int | None, field: str | None) -> int:
    """A decimal integer (ASCII digits, optional sign) that fits in int64.

    Raises:
        DataFormatError: naming the file, line and field.
    """
    text = value.strip(" \t")
    if not _DECIMAL.fullmatch(text):
        raise DataFormatError(
            f"expected an integer, found {value!r:.60}",
            path=src.path,
            line=line,
            field=field,
        )
    number = _to_int(text, 10)
    _check_range(number, value, src, line, field)
    return number


def parse_number(value: str, src: Source, line: int | None, field: str | None) -> float:
    """A finite decimal number (``1``, ``-2.5``, ``1e9``).

    Raises:
        DataFormatError: naming the file, line and field.
    """
    text = value.strip(" \t")
    number = float(text) if _NUMBER.fullmatch(text) else None
    if number is None or not math.isfinite(number):
        raise DataFormatError(
            f"expected a finite number, found {value!r:.60}",
            path=src.path,
            line=line,
            field=field,
        )
    return number


def _to_int(text: str, base: int) -> int:
    """``int(text, base)``, but any value of over 40 significant digits is read
    as 2**64 (out of range) instead of parsed (Python refuses 4300+ digits)."""
    digits = text.lstrip("+-")
    if base == 16:
        digits = digits[2:]
    if len(digits.lstrip("0")) > 40:
        return 2**64
    return int(text, base)


def _check_range(
    number: int, value: str, src: Source, line: int | None, field: str | None
) -> None:
    if not _INT64[0] <= number <= _INT64[1]:
        raise DataFormatError(
            f"integer {value.strip()[:40]} is outside the 64-bit range "
            f"{_INT64[0]}..{_INT64[1]}",
            path=src.path,
            line=line,
            field=field,
        )


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (for wrapping third-party errors)."""
    return " ".join(str(exc).split()) or type(exc).__name__


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

    Line endings may be LF, CRLF or CR (old Mac), also mixed; a UTF-8 BOM is
    skipped. Quoted fields cannot span lines.

    Raises:
        DataFormatError: naming the file, line and field of the first bad value.
    """
    data = src.data
    if data.startswith(b"\xef\xbb\xbf") and encoding == "utf-8":
        data = data[3:]
    data = universal_newlines(data)
    text_data = data
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
    if not header and not data.strip():
        raise DataFormatError(
            f"the file is empty (expected {delimiter!r}-separated rows of "
            f"{', '.join(all_names)})",
            path=src.path,
            line=1,
        )
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
    except (pa.ArrowException, UnicodeError, ValueError) as exc:
        _locate(
            src, text_data, columns, all_names, delimiter, header, encoding, quoting
        )
        raise DataFormatError(f"cannot parse: {one_line(exc)}", path=src.path) from exc
    out: dict[str, np.ndarray | list[str]] = {}
    for col in columns:
        values = table.column(col.name)
        if col.kind == "str":
            out[col.name] = values.to_pylist()
            continue
        arr = values.to_numpy()
        if col.kind == "float" and not np.all(np.isfinite(arr)):
            _locate(
                src, text_data, columns, all_names, delimiter, header, encoding, quoting
            )
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
    first = data.split(b"\n", 1)[0]
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
    try:
        return _split(text, sep.decode(encoding), quoting)
    except csv.Error as exc:
        raise DataFormatError(
            f"malformed quoting in the header ({exc}); an opening '\"' has no "
            "closing one",
            path=src.path,
            line=1,
        ) from None


def _split(text: str, sep: str, quoting: bool) -> list[str]:
    if quoting:
        return next(csv.reader([text], delimiter=sep, strict=True))
    return text.split(sep)


def _locate(
    src: Source,
    data: bytes,
    columns: Sequence[Column],
    names: Sequence[str],
    delimiter: str,
    header: bool,
    encoding: str,
    quoting: bool,
) -> None:
    """Find the first malformed line of ``data`` (the file's bytes, BOM skipped,
    newlines made LF) and raise for it; return if none is found."""
    kinds = {c.name: c.kind for c in columns}
    n_fields = len(names)
    raw_sep = delimiter.encode(encoding)
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if header and lineno == 1:
            continue
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
    """What pyarrow reads as int64: optional ``-`` and digits, or ``0x`` hex."""
    text = value.strip(" \t")
    if not _ARROW_INT.fullmatch(text):
        raise DataFormatError(
            f"expected an integer, found {value!r:.60}",
            path=src.path,
            line=line,
            field=field,
        )
    hexadecimal = text[:2] in ("0x", "0X")
    number = _to_int(text, 16 if hexadecimal else 10)
    _check_range(number, value, src, line, field)


def _check_float(value: str, src: Source, line: int, field: str) -> None:
    text = value.strip(" \t")
    if not _NUMBER.fullmatch(text):
        raise DataFormatError(
            f"expected a number, found {value!r:.60}",
            path=src.path,
            line=line,
            field=field,
        )
    if not math.isfinite(float(text)):
        raise DataFormatError(
            f"expected a finite number, found {value!r:.60}",
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
