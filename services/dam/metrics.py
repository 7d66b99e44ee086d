"""Prometheus metrics of the DAM (served at /metrics)."""

from prometheus_client import Counter, Histogram

UPLOADS = Counter("maam_dam_uploads_total", "Assets uploaded", ["kind"])
UPLOAD_REJECTS = Counter("maam_dam_upload_rejects_total", "Uploads refused", ["reason"])
ANNOTATION_RESULTS = Counter("maam_dam_annotation_results_total", "Per-model results stored", ["task", "ok"])
ANNOTATION_JOBS = Counter("maam_dam_annotation_jobs_total", "Annotation jobs finished", ["outcome"])
SEARCH_LATENCY = Histogram("maam_dam_search_seconds", "Search latency", ["mode"])
SEARCH_DOCS_WRITTEN = Counter("maam_dam_search_docs_written_total",
                              "Search documents built from PostgreSQL and written to the search backend", ["cause"])
