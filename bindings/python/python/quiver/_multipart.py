"""``files=`` in httpx's shapes, as the parts the engine encodes (core's ``Multipart``).

A file on disk, opened in binary mode at its start, is handed over by path: the engine streams
it from disk as the connection sends. Any other readable object is read in chunks (64 KiB) only
as the connection asks for them, with its length when it can seek. Nothing reads a whole file
into memory.
"""

from __future__ import annotations

import io
import mimetypes
import os
from typing import Any, Iterator, List, Mapping, Optional, Tuple

from ._types import RequestData, RequestFiles

__all__ = ["parts"]

#: ``(name, kind, value, filename, content_type, length)``; kind ``text``, ``bytes``, ``file``
#: (value: a path) or ``stream`` (value: an iterator or async iterator of chunks).
Part = Tuple[str, str, Any, Optional[str], Optional[str], Optional[int]]

_CHUNK = 64 * 1024


def _field_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TypeError(f"a data= field must be str, bytes, int, float, bool or None, not {type(value).__name__}")


def _pairs(items: Any) -> List[Tuple[str, Any]]:
    return list(items.items() if isinstance(items, Mapping) else items)


def _guess(filename: Optional[str]) -> Optional[str]:
    if not filename:
        return None
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _default_filename(obj: Any) -> str:
    name = getattr(obj, "name", None)
    if isinstance(name, (str, bytes, os.PathLike)):
        base = os.path.basename(os.fsdecode(name))
        if base:
            return base
    return "upload"


def _disk_path(obj: Any) -> Optional[str]:
    """The path of ``obj`` when it is a regular file on disk opened in binary mode and positioned
    at its start (the engine then reads the file itself), else None."""
    if isinstance(obj, io.TextIOBase) or "b" not in getattr(obj, "mode", "b"):
        return None
    name = getattr(obj, "name", None)
    if not isinstance(name, (str, bytes, os.PathLike)):
        return None
    try:
        if obj.tell() != 0:
            return None
        path = os.fsdecode(name)
        opened, named = os.fstat(obj.fileno()), os.stat(path)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    # The name still leads to this very file (not renamed, replaced, or relative to another
    # working directory).
    if not os.path.samestat(opened, named) or not os.path.isfile(path):
        return None
    return os.path.abspath(path)


def _remaining(obj: Any) -> Optional[int]:
    """How many bytes a binary, seekable object has left, else None."""
    if isinstance(obj, io.TextIOBase) or "b" not in getattr(obj, "mode", "b"):
        return None
    try:
        if not obj.seekable():
            return None
        here: int = obj.tell()
        end: int = obj.seek(0, io.SEEK_END)
        obj.seek(here)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return max(end - here, 0)


def _chunks(read: Any) -> Iterator[Any]:
    while True:
        chunk = read(_CHUNK)
        if not chunk:
            return
        yield chunk


def _file_part(field: str, value: Any, allow_async: bool) -> Part:
    if isinstance(value, tuple):
        if len(value) == 2:
            filename, content = value
            content_type = None
        elif len(value) == 3:
            filename, content, content_type = value
        else:
            raise TypeError(
                f"files={{{field!r}: ...}}: give content, (filename, content) or (filename, content, content_type)"
            )
    else:
        filename, content, content_type = _default_filename(value), value, None
    if content_type is None:
        content_type = _guess(filename)
    if isinstance(content, str):
        return (field, "bytes", content.encode("utf-8"), filename, content_type, None)
    if isinstance(content, (bytes, bytearray, memoryview)):
        return (field, "bytes", content, filename, content_type, None)
    if callable(getattr(content, "read", None)):
        path = _disk_path(content) if filename is not None else None
        if path is not None:
            return (field, "file", path, filename, content_type, None)
        return (field, "stream", _chunks(content.read), filename, content_type, _remaining(content))
    if hasattr(content, "__aiter__"):
        if not allow_async:
            raise TypeError(f"files={{{field!r}: ...}}: an async iterable needs quiver.AsyncClient")
        return (field, "stream", content.__aiter__(), filename, content_type, None)
    if hasattr(content, "__iter__"):
        return (field, "stream", iter(content), filename, content_type, None)
    raise TypeError(
        f"files={{{field!r}: ...}}: cannot upload {type(content).__name__}; give bytes, str or a file object"
    )


def parts(data: Optional[RequestData], files: RequestFiles, allow_async: bool) -> List[Part]:
    """The parts of a ``multipart/form-data`` body: ``data=`` fields first (text), then
    ``files=``, in order, as httpx sends them."""
    out: List[Part] = []
    for key, value in _pairs(data or {}):
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, (bytes, bytearray, memoryview)):
                out.append((key, "bytes", v, None, None, None))
            else:
                out.append((key, "text", _field_text(v), None, None, None))
    for field, value in _pairs(files):
        out.append(_file_part(field, value, allow_async))
    return out
