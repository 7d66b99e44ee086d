"""Streaming multipart parsing: the file part goes straight into a BlobWriter (size cap, sha256) instead
of being spooled whole before the handler runs; the small text fields are collected in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException

from services.dam.blobstore import BlobStore, BlobTooLargeError, BlobWriter

MAX_FIELD_BYTES = 64 * 1024


class UploadFormError(ValueError):
    """A malformed multipart body or a missing/duplicated file part (HTTP 400/422)."""


@dataclass
class StreamedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[tuple[str, str, BlobWriter]] = field(default_factory=list)  # (field, filename, writer)

    def abort(self) -> None:
        for _, _, writer in self.files:
            writer.abort()


async def parse_streamed_form(
    content_type: str | None, body: AsyncIterator[bytes], store: BlobStore, max_bytes: int, max_files: int = 1
) -> StreamedForm:
    ctype, params = parse_options_header(content_type or "")
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise UploadFormError("send the asset as multipart/form-data with a `file` part")
    form = StreamedForm()
    state: dict = {"headers": {}, "name": None, "filename": None, "buf": None, "writer": None,
                   "hname": b"", "hval": b""}

    def on_part_begin() -> None:
        state.update(headers={}, name=None, filename=None, buf=bytearray(), writer=None)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["hname"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["hval"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["hname"].lower()] = state["hval"]
        state["hname"], state["hval"] = b"", b""

    def on_headers_finished() -> None:
        disposition, opts = parse_options_header(state["headers"].get(b"content-disposition", b""))
        if disposition != b"form-data" or b"name" not in opts:
            raise UploadFormError("a multipart part has no form-data name")
        state["name"] = opts[b"name"].decode(errors="replace")
        if b"filename" in opts:
            if len(form.files) >= max_files:
                raise UploadFormError(f"at most {max_files} file part(s) per request")
            state["filename"] = opts[b"filename"].decode(errors="replace")
            state["writer"] = store.writer(max_bytes)
            form.files.append((state["name"], state["filename"], state["writer"]))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["writer"] is not None:
            state["writer"].write(data[start:end])
        else:
            state["buf"] += data[start:end]
            if len(state["buf"]) > MAX_FIELD_BYTES:
                raise UploadFormError(f"form field {state['name']!r} is over {MAX_FIELD_BYTES} bytes")

    def on_part_end() -> None:
        if state["writer"] is not None:
            state["writer"].close()
        else:
            form.fields[state["name"]] = bytes(state["buf"]).decode("utf-8", errors="replace")

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in body:
            parser.write(chunk)
        parser.finalize()
    except BlobTooLargeError:
        form.abort()
        raise
    except (UploadFormError, HTTPException):  # HTTPException: the body limit (413) or a disconnect
        form.abort()
        raise
    except Exception as exc:  # python_multipart raises its own errors on malformed bodies
        form.abort()
        raise UploadFormError(f"malformed multipart body: {exc}") from exc
    return form
