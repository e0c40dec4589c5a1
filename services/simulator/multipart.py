"""A small ``multipart/form-data`` parser on the standard library.

Starlette's form parsing needs the ``python-multipart`` package, which the project does not
depend on; the simulator's uploads are small and few, so it parses the body itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message


class MultipartError(ValueError):
    """The body is not valid ``multipart/form-data``."""


@dataclass(frozen=True)
class FilePart:
    filename: str
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class Form:
    fields: dict[str, str]
    files: dict[str, FilePart]


def _header(name: str, value: str) -> Message:
    message = Message()
    message[name] = value
    return message


def boundary_of(content_type: str) -> str:
    boundary = _header("Content-Type", content_type).get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise MultipartError("multipart body without a boundary")
    return boundary


def parse_form(content_type: str, body: bytes) -> Form:
    """Split ``body`` on the boundary of ``content_type``; the last value of a name wins."""
    delimiter = b"\r\n--" + boundary_of(content_type).encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    if len(chunks) < 2 or not chunks[-1].startswith(b"--"):
        raise MultipartError("multipart body is not terminated")
    fields: dict[str, str] = {}
    files: dict[str, FilePart] = {}
    for chunk in chunks[1:-1]:
        head, separator, data = chunk.partition(b"\r\n\r\n")
        if not separator:
            raise MultipartError("multipart part without headers")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        disposition = _header("Content-Disposition", headers.get("content-disposition", ""))
        field = disposition.get_param("name", header="content-disposition")
        if not isinstance(field, str):
            raise MultipartError("multipart part without a name")
        filename = disposition.get_filename()
        if filename is None:
            fields[field] = data.decode("utf-8", "replace")
        else:
            files[field] = FilePart(filename, headers.get("content-type"), data)
    return Form(fields, files)
