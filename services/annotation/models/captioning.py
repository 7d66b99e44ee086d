"""Image captioning: an ONNX model taking the image and the tokens so far and giving next-token
logits at every position ([seq_len, vocab]); decoded greedily or by beam search. The vocabulary
comes from the repository (sidecar labels / labels_file), special ids from params."""

from __future__ import annotations

import numpy as np

from services.annotation.models.base import AdapterError, TaskModel
from services.annotation.models.preprocess import resize, to_tensor
from services.annotation.models.types import Caption


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class Captioner(TaskModel):
    tasks = ("image_captioning",)

    def _ids(self) -> tuple[int, int, int]:
        return int(self.param("bos_id", 1)), int(self.param("eos_id", 2)), int(self.param("pad_id", 0))

    def _text(self, ids: list[int]) -> str:
        bos, eos, pad = self._ids()
        words = [self.label(i) for i in ids if i not in (bos, eos, pad)]
        text = " ".join(words).replace(" ##", "")
        return text

    async def caption(self, rgb: np.ndarray) -> Caption:
        if not self.labels:
            raise AdapterError(f"model {self.name!r}: its maam.json needs the vocabulary (labels or labels_file)")
        seq_len = int(self.param("seq_len", 16))
        beams = max(1, int(self.param("num_beams", 1)))
        size = int(self.param("input_size", 224))
        image = to_tensor(resize(rgb, size), self.params.get("mean"), self.params.get("std"))
        bos, eos, pad = self._ids()
        image_name, ids_name = self.input_names[0], self.input_names[1]
        # Each hypothesis: (tokens, sum of log-probs, finished).
        hyps: list[tuple[list[int], float, bool]] = [([bos], 0.0, False)]
        for step in range(seq_len - 1):
            live = [h for h in hyps if not h[2]]
            if not live:
                break
            ids = np.full((len(live), seq_len), pad, np.int64)
            for row, (tokens, _, _) in enumerate(live):
                ids[row, : len(tokens)] = tokens
            images = np.repeat(image[None], len(live), axis=0)
            out = await self._infer({image_name: images, ids_name: ids})
            logp = _log_softmax(out[self.output_names[0]][:, step, :].astype(np.float64))
            candidates = [h for h in hyps if h[2]]
            for row, (tokens, total, _) in enumerate(live):
                for token in np.argsort(-logp[row])[:beams]:
                    candidates.append(([*tokens, int(token)], total + float(logp[row, token]), int(token) == eos))
            # Rank by mean log-prob so long captions are not punished for their length.
            hyps = sorted(candidates, key=lambda h: -h[1] / max(1, len(h[0]) - 1))[:beams]
        best = hyps[0]
        score = float(np.exp(best[1] / max(1, len(best[0]) - 1)))
        return Caption(self._text(best[0][1:]), score, [self._text(h[0][1:]) for h in hyps[1:]])
