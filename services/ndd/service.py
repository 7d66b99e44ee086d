"""What the NDD routes do: accept indexing jobs durably, index their items (fetch, decode, describe), build
queries and answer searches. The engine (store + FAISS indexes) does the indexing and matching."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from services.common.fetch import fetch_url
from services.common.media import MediaError, decode_image, media_kind, sniff_media_type
from services.common.settings import Settings
from services.ndd import video
from services.ndd.core.config import NddSettings
from services.ndd.descriptors import deep, offline
from services.ndd.engine import IMAGE, IMAGE_DESCRIPTORS, VIDEO, Engine, ImageQuery, Match, deep_key, descriptor_name
from services.ndd.jobs import Job, JobItem, JobQueue, JobWorker, NewItem
from services.ndd.metrics import Metrics


class NddService:
    def __init__(self, settings: Settings, ndd: NddSettings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.ndd = ndd
        root = settings.data_dir / "ndd"
        self.engine = Engine(root, ndd)
        self.metrics = metrics or Metrics()
        self.embedder: deep.AnnotationEmbedder | None = None
        if ndd.annotation_url:
            self.embedder = deep.AnnotationEmbedder(ndd.annotation_url, ndd.annotation_model, ndd.annotation_timeout_s)
        self.jobs = JobQueue(root / "ndd.sqlite3", ndd.job_queue_size, ndd.jobs_kept)
        self.worker = JobWorker(self.jobs, self._index_item, self._job_done)

    def start(self) -> None:
        self.worker.start()

    async def close(self) -> None:
        await self.worker.stop(self.ndd.shutdown_grace_s)
        if self.embedder is not None:
            await self.embedder.close()
        self.jobs.close()
        self.engine.close()

    # --------------------------------------------------------------------------------- jobs
    async def submit(self, media: str, collection_id: str, items: list[NewItem]) -> dict[str, Any]:
        """The job's report once it is committed: from then on it survives any crash."""
        report = await asyncio.to_thread(self.jobs.submit, media, collection_id, items)
        self.worker.wake()
        self.metrics.jobs_waiting.set(self.jobs.waiting)
        return report

    async def _index_item(self, job: Job, item: JobItem) -> list[str]:
        data = item.data if item.data is not None else await fetch_url(item.url or "", self.settings.media)
        meta = {"url": item.url} if item.url else {"filename": item.filename}
        warnings: list[str] = []
        if job.kind == IMAGE:
            rgb = await asyncio.to_thread(self.decode_image, data)
            embedding = None
            if self.embedder is not None:
                try:
                    embedding = await self.embedder.embed(data)
                except (deep.DescriptorUnavailableError, deep.DeepInputError) as exc:
                    warnings.append(f"indexed without the deep descriptor: {exc}")
            await asyncio.to_thread(self.engine.add_image, job.collection_id, item.item_id, rgb, embedding, meta)
        else:
            features = await asyncio.to_thread(self.video_features, data)
            await asyncio.to_thread(self.engine.add_video, job.collection_id, item.item_id, features, meta)
        self.metrics.items_indexed.labels(job.kind).inc()
        return warnings

    async def _job_done(self, job: Job) -> None:
        report = await asyncio.to_thread(self.jobs.report, job.id)
        if report and report["errors"]:
            self.metrics.item_errors.labels(job.kind).inc(len(report["errors"]))
        await asyncio.to_thread(self.engine.persist, job.collection_id)

    # ------------------------------------------------------------------------------ decoding
    def decode_image(self, data: bytes) -> np.ndarray:
        if media_kind(sniff_media_type(data)) == VIDEO:
            raise MediaError("expected an image, got a video (index it with /videos/jobs)")
        return decode_image(data, self.settings.media.max_image_pixels)

    def video_features(self, data: bytes) -> video.VideoFeatures:
        kind = media_kind(sniff_media_type(data))
        if kind not in (VIDEO, None):
            raise MediaError(f"expected a video, got an {kind}")
        return video.extract(data, self.ndd.video_frame_interval_s, self.ndd.shot_cut_threshold,
                             self.ndd.max_video_frames)

    # -------------------------------------------------------------------------------- search
    async def image_query(self, data: bytes, descriptor: str) -> ImageQuery:
        rgb = await asyncio.to_thread(self.decode_image, data)
        if descriptor == offline.NAME:
            prepared = await asyncio.to_thread(offline.prepare_query, rgb)
            return ImageQuery(descriptor, prepared.vectors, prepared)
        embedder = self.embedder or deep.AnnotationEmbedder("")  # the latter raises "not configured"
        embedding = await embedder.embed(data)
        return ImageQuery(deep_key(embedding.space), embedding.vector[None, :])

    async def search_images(self, collection_id: str, query: ImageQuery, t_sim: float, t_rank: int,
                            exclude: int | None, described: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        matches = await asyncio.to_thread(self.engine.search_images, collection_id, query, t_sim, t_rank, exclude)
        name = descriptor_name(query.descriptor)[0]
        self.metrics.searches.labels(IMAGE, name).inc()
        self.metrics.search_seconds.labels(IMAGE).observe(time.perf_counter() - started)
        return _search_json(IMAGE, collection_id, query.descriptor, t_sim, t_rank, matches, described)

    async def search_videos(self, collection_id: str, query: video.VideoFeatures, t_sim: float, t_rank: int,
                            exclude: int | None, described: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        matches = await asyncio.to_thread(self.engine.search_videos, collection_id, query, t_sim, t_rank, exclude)
        self.metrics.searches.labels(VIDEO, offline.NAME).inc()
        self.metrics.search_seconds.labels(VIDEO).observe(time.perf_counter() - started)
        described |= {"duration": round(query.duration, 3), "frames": query.frames}
        return _search_json(VIDEO, collection_id, offline.NAME, t_sim, t_rank, matches, described)

    def list_items(self, media: str, collection_id: str, offset: int, limit: int) -> dict[str, Any]:
        items, total = self.engine.store.list_items(collection_id, media, offset, limit)
        listed = []
        for item in items:
            names = [descriptor_name(d)[0] for d in item.descriptors]
            listed.append({"id": item.item_id, "meta": item.meta, "created": item.created,
                           "descriptors": [d for d in names if d in IMAGE_DESCRIPTORS]})
        return {"collection_id": collection_id, "total": total, "offset": offset, "items": listed}

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "jobs_waiting": self.jobs.waiting,
                "deep_descriptor": "configured" if self.embedder else "not configured"}


def _match_json(match: Match) -> dict[str, Any]:
    out: dict[str, Any] = {"id": match.item.item_id, "score": match.score, "meta": match.item.meta}
    if match.item.media_type == VIDEO:
        out["segments"] = [vars(s) for s in match.segments]
    return out


def _search_json(media: str, collection_id: str, stored: str, t_sim: float, t_rank: int,
                 matches: list[Match], query: dict[str, Any]) -> dict[str, Any]:
    descriptor, space = descriptor_name(stored)
    return {"media_type": media, "collection_id": collection_id, "descriptor": descriptor, "space": space,
            "t_sim": t_sim, "t_rank": t_rank, "query": query, "results": [_match_json(m) for m in matches]}
