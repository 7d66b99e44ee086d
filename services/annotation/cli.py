"""Annotation commands beyond serving (the lead mounts `app` into `maam`): `blur-faces`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Annotation tools that run without the server.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Annotation tools that run without the server."""


@app.command("blur-faces")
def blur_faces(
    source: Annotated[Path, typer.Argument(help="Video to blur (any container/codec FFmpeg reads).", metavar="IN")],
    target: Annotated[Path, typer.Argument(help="Where to write the blurred video.", metavar="OUT")],
    every: Annotated[int, typer.Option(min=1, help="Run the detector on every N-th frame (plus bisection).")] = 10,
    detector: Annotated[
        str,
        typer.Option(help="'haar' (ships with OpenCV) or an installed model with task face_detection; "
                     "default: the installed DNN detector, else Haar."),
    ] = "",
    equirectangular: Annotated[
        bool, typer.Option("--equirectangular", help="The video is 360° equirectangular (faces cross the seam).")
    ] = False,
    max_side: Annotated[int, typer.Option(min=32, help="Longer side of the frames the detector sees.")] = 640,
    full_reencode: Annotated[
        bool, typer.Option("--full-reencode", help="Re-encode every frame (default: GOPs without a face are "
                           "copied from the source where its codec and container allow).")
    ] = False,
) -> None:
    """Blur every face in a video; prints the face tracks found."""
    from services.annotation.face_blur import blur_video
    from services.annotation.face_detection.factory import open_face_detector
    from services.common.inference import InferenceError, ModelNotFoundError
    from services.common.media import MediaError

    if not source.is_file():
        typer.echo(f"error: {source} is not a file", err=True)
        raise typer.Exit(2)
    if target.resolve() == source.resolve():
        typer.echo("error: OUT must differ from IN (the source is never overwritten)", err=True)
        raise typer.Exit(2)

    async def run():
        async with open_face_detector(detector) as face_detector:
            return await blur_video(
                source.read_bytes(), face_detector, every=every, equirectangular=equirectangular, max_side=max_side,
                copy_gops=not full_reencode,
            )

    started = time.perf_counter()
    try:
        result = asyncio.run(run())
    except (MediaError, ModelNotFoundError, InferenceError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    # Write beside the target and rename, so OUT is never left half-written.
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(result.video)
    partial.replace(target)
    probe = result.probe
    typer.echo(
        f"{target}: {result.mime_type}, {probe.frame_count} frames, {len(result.tracks)} face track(s), "
        f"detector ran on {result.frames_checked} frame(s), {time.perf_counter() - started:.1f} s"
    )
    typer.echo(f"  video: {result.encoding.summary()}")
    for track in result.tracks:
        typer.echo(
            f"  frames {track.start_frame}-{track.end_frame} ({track.start_time:.2f}-{track.end_time:.2f} s), "
            f"{len(track.boxes)} boxes"
        )


if __name__ == "__main__":
    app()
