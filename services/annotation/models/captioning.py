"""Image captioning, in either of two repository layouts:

- one model taking the image and the tokens so far, giving next-token logits at every position
  ([seq_len, vocab]); the vocabulary comes from the sidecar (labels / labels_file), special ids from
  params (bos_id, eos_id, pad_id, seq_len, num_beams);
- an encoder-decoder pair, as `maam models pull vit_gpt2_caption` installs it: this model is the
  vision encoder (image -> encoder states) and `params.decoder_model` names the text decoder (tokens
  so far + encoder states -> next-token logits, no KV cache). The encoder runs once; greedy or beam
  search then calls the decoder once per step with every live beam in one batch, and the GPT-2
  vocabulary in the model dir turns ids into text.

Both decode greedily (num_beams 1) or by beam search; the score is the best caption's mean per-token
probability and the other beams come back as alternatives."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tritonclient.grpc import model_config_pb2

from services.annotation.models.base import AdapterError, TaskModel
from services.annotation.models.bpe_text import ByteBpeDecoder
from services.annotation.models.preprocess import model_input
from services.annotation.models.types import Caption
from services.common.model_repository import ModelSpec
from services.common.text_tokenizers import TokenizerError


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@dataclass(frozen=True)
class _Hypothesis:
    tokens: list[int]  # the decoder start token first
    logp: float  # sum of the generated tokens' log-probabilities

    @property
    def score(self) -> float:
        """Mean log-prob per generated token (length penalty 1.0, as transformers' beam search)."""
        return self.logp / max(1, len(self.tokens) - 1)


class Captioner(TaskModel):

    # The decoder's repository entry for the encoder-decoder layout; the catalog links it (None: not installed).
    decoder: ModelSpec | None = None

    @property
    def decoder_name(self) -> str:
        """The decoder model of the encoder-decoder layout; empty for the single-model layout."""
        return str(self.params.get("decoder_model") or "")

    async def caption(self, rgb: np.ndarray) -> Caption:
        if self.decoder_name:
            return await self._caption_split(rgb)
        return await self._caption_single(rgb)

    # ---- one model: image + tokens -> logits at every position ------------------------------
    def _ids(self) -> tuple[int, int, int]:
        return int(self.param("bos_id", 1)), int(self.param("eos_id", 2)), int(self.param("pad_id", 0))

    def _text(self, ids: list[int]) -> str:
        bos, eos, pad = self._ids()
        words = [self.label(i) for i in ids if i not in (bos, eos, pad)]
        text = " ".join(words).replace(" ##", "")
        return text

    async def _caption_single(self, rgb: np.ndarray) -> Caption:
        if not self.labels:
            raise AdapterError(f"model {self.name!r}: its maam.json needs the vocabulary (labels or labels_file)")
        seq_len = int(self.param("seq_len", 16))
        beams = max(1, int(self.param("num_beams", 1)))
        image = model_input(rgb, self.params)
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

    # ---- encoder + decoder -----------------------------------------------------------------
    def _special_ids(self) -> tuple[int, int, int]:
        try:
            start = int(self.params["decoder_start_token_id"])
            eos = int(self.params["eos_token_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise AdapterError(
                f"model {self.name!r}: its maam.json needs decoder_start_token_id and eos_token_id"
            ) from exc
        return start, eos, int(self.param("pad_token_id", eos))

    def _text_decoder(self) -> ByteBpeDecoder:
        spec = self.params.get("tokenizer") or {}
        kind = spec.get("kind", "gpt2-bpe") if isinstance(spec, dict) else None
        if kind != "gpt2-bpe":
            raise AdapterError(f"model {self.name!r}: unsupported caption tokenizer {spec!r} (known: gpt2-bpe)")
        try:
            return ByteBpeDecoder.from_dir(self.spec.path, str(spec.get("vocab_file", "vocab.json")),
                                           self._special_ids())
        except TokenizerError as exc:
            raise AdapterError(f"model {self.name!r}: {exc}") from exc

    def _decoder_spec(self) -> ModelSpec:
        if self.decoder is None or not self.decoder.installed:
            raise AdapterError(
                f"model {self.name!r} needs its decoder {self.decoder_name!r}, which is not installed; "
                f"reinstall the pair with `maam models pull {self.name}`"
            )
        return self.decoder

    async def _encode(self, rgb: np.ndarray) -> np.ndarray:
        image = model_input(rgb, self.params)
        states = (await self._infer({self.input_names[0]: image[None]}))[self.output_names[0]]
        return states.astype(np.float32)  # [1, patches, hidden]

    async def _next_logp(self, decoder: ModelSpec, states: np.ndarray, seqs: list[list[int]]) -> np.ndarray:
        """Log-probs of the next token for each sequence (all of one length): one decoder call per
        batch of at most the decoder's max_batch_size rows."""
        inputs = decoder.config.input
        ids_name = next((t.name for t in inputs if t.data_type == model_config_pb2.TYPE_INT64), inputs[0].name)
        states_name = next(t.name for t in inputs if t.name != ids_name)
        logits_name = decoder.config.output[0].name
        ids = np.asarray(seqs, np.int64)
        chunk = decoder.max_batch_size if decoder.max_batch_size > 0 else len(seqs)
        parts = []
        for lo in range(0, len(seqs), chunk):
            rows = ids[lo : lo + chunk]
            batch_states = np.repeat(states, len(rows), axis=0)
            out = await self.backend.infer(decoder.name, {ids_name: rows, states_name: batch_states})
            parts.append(np.asarray(out[logits_name]).reshape(len(rows), -1))
        return _log_softmax(np.concatenate(parts).astype(np.float64))

    async def _caption_split(self, rgb: np.ndarray) -> Caption:
        decoder = self._decoder_spec()
        text = self._text_decoder()
        start, eos, _ = self._special_ids()
        max_length = max(2, int(self.param("max_length", 20)))  # tokens, the start token included
        beams = max(1, int(self.param("num_beams", 1)))
        states = await self._encode(rgb)
        if beams == 1:
            found = [await self._greedy(decoder, states, start, eos, max_length)]
        else:
            found = await self._beam_search(decoder, states, start, eos, max_length, beams)
        best = found[0]
        try:
            texts = [text.decode(h.tokens).strip() for h in found]
        except TokenizerError as exc:
            raise AdapterError(f"model {self.name!r}: the decoder gave ids outside its vocabulary: {exc}") from exc
        return Caption(texts[0], float(np.exp(best.score)), texts[1:])

    async def _greedy(
        self, decoder: ModelSpec, states: np.ndarray, start: int, eos: int, max_length: int
    ) -> _Hypothesis:
        tokens, total = [start], 0.0
        while len(tokens) < max_length:
            logp = (await self._next_logp(decoder, states, [tokens]))[0]
            token = int(np.argmax(logp))
            tokens.append(token)
            total += float(logp[token])
            if token == eos:
                break
        return _Hypothesis(tokens, total)

    async def _beam_search(
        self, decoder: ModelSpec, states: np.ndarray, start: int, eos: int, max_length: int, beams: int
    ) -> list[_Hypothesis]:
        """transformers' beam search (length penalty 1.0, early_stopping False): keep the `beams`
        best unfinished sequences; a sequence ending in eos among the top `beams` candidates of a
        step is finished; stop once no live beam can beat the worst of `beams` finished ones."""
        live = [_Hypothesis([start], 0.0)]
        finished: list[_Hypothesis] = []
        while live and len(live[0].tokens) < max_length:
            logp = await self._next_logp(decoder, states, [h.tokens for h in live])
            totals = logp + np.array([h.logp for h in live])[:, None]
            flat = totals.ravel()
            top = np.argpartition(-flat, min(2 * beams, flat.size) - 1)[: 2 * beams]
            top = top[np.argsort(-flat[top], kind="stable")]
            vocab = totals.shape[1]
            next_live: list[_Hypothesis] = []
            for rank, index in enumerate(top):
                row, token = divmod(int(index), vocab)
                hyp = _Hypothesis([*live[row].tokens, token], float(flat[index]))
                if token == eos:
                    if rank < beams:
                        finished.append(hyp)
                else:
                    next_live.append(hyp)
                if len(next_live) == beams:
                    break
            finished = sorted(finished, key=lambda h: -h.score)[:beams]
            live = next_live
            # The best a live beam can still reach, judged at its current length as transformers does.
            if len(finished) == beams and live and max(h.score for h in live) <= finished[-1].score:
                break
        return sorted(finished + live, key=lambda h: -h.score)[:beams]
