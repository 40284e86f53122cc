"""The prediction service: descriptors in, (duration_ns, tw_model, contention) out, through a cache
(contention: how the op shares its GPU, predictors/contention.py).

One instance per coordinator, shared by every connection thread and the gRPC Predict RPC."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from coordinator import wire
from coordinator.cache import PredictionCache, cache_file

log = logging.getLogger(__name__)


class PredictionFailed(Exception):
    """The predictor raised or answered nonsense for a descriptor of a batch."""


@dataclass
class ServiceStats:
    predictions_served: int = 0
    cache_hits: int = 0
    cache_misses: int = 0


def _with_device_count(spec: object, gpus: int) -> object:
    """The spec with the run's device count, when the spec type carries one."""
    if dataclasses.is_dataclass(spec) and not isinstance(spec, type):
        names = {f.name for f in dataclasses.fields(spec)}
        if "device_count" in names:
            return dataclasses.replace(spec, device_count=gpus)
    return spec


class PredictionService:
    def __init__(self, gpu: str, gpus: int, predictor: str, options: dict[str, object],
                 cache_dir: Path | None) -> None:
        # Imported here so that a missing or broken predictors package fails the start, loudly.
        import predictors
        from predictors import catalog, contention, descriptors

        self.gpu = gpu
        self.gpus = gpus
        self.spec = _with_device_count(catalog.get_spec(gpu), gpus)
        self.predictor = predictors.get_predictor(predictor, self.spec, **options)
        self.predictor_name = str(getattr(self.predictor, "name", predictor))
        self.predictor_version = str(getattr(self.predictor, "version", "0"))
        self._from_wire = descriptors.from_wire
        self._contention_word = contention.contention_word
        self._contention: dict[bytes, int] = {}   # key -> word, computed once per descriptor
        self._predict_batch = getattr(self.predictor, "predict_batch", None)
        path = None
        if cache_dir is not None:
            # the catalog's own key, so aliases (h100-sxm, h100) share one file
            spec_key = str(getattr(self.spec, "key", gpu))
            path = cache_file(cache_dir, spec_key, self.predictor_name, self.predictor_version,
                              wire.constants().abi_version)
        self.cache = PredictionCache(path)
        self.stats = ServiceStats()
        self._stats_lock = threading.Lock()
        # Predictors are not promised to be thread-safe; misses are rare after warm-up.
        self._predictor_lock = threading.Lock()
        log.info("predictor %s version %s for %s x%d; cache %s (%d entries)", self.predictor_name,
                 self.predictor_version, gpu, gpus, path or "in memory", len(self.cache))

    def predict(self, descs: Sequence[wire.WireDesc]) -> list[tuple[int, int, int]]:
        """(duration_ns, tw_model, contention) per descriptor, in order. PredictionFailed names the
        culprit."""
        keys = [d.key for d in descs]
        results: list[tuple[int, int] | None] = [self.cache.get(k) for k in keys]
        missing: dict[bytes, list[int]] = {}
        for index, value in enumerate(results):
            if value is None:
                missing.setdefault(keys[index], []).append(index)
        hits = len(descs) - sum(len(v) for v in missing.values())
        if missing:
            firsts = [indices[0] for indices in missing.values()]
            values = self._predict_misses([descs[i] for i in firsts])
            for (key, indices), value in zip(missing.items(), values, strict=True):
                self.cache.put(key, value)
                for index in indices:
                    results[index] = value
        with self._stats_lock:
            self.stats.predictions_served += len(descs)
            self.stats.cache_hits += hits
            self.stats.cache_misses += len(descs) - hits
        return [(*value, self._contention_of(d)) for d, value in zip(descs, results, strict=True)]  # type: ignore[misc]

    def _contention_of(self, desc: wire.WireDesc) -> int:
        word = self._contention.get(desc.key)
        if word is None:
            try:
                word = self._contention_word(self.spec, self._from_wire(desc.fields(), desc.name))
            except Exception as exc:
                raise PredictionFailed(f"descriptor {desc.name!r} {desc.fields()}: contention: {exc!r}") from exc
            self._contention[desc.key] = word
        return word

    def _predict_misses(self, descs: list[wire.WireDesc]) -> list[tuple[int, int]]:
        converted = []
        for d in descs:
            try:
                converted.append(self._from_wire(d.fields(), d.name))
            except Exception as exc:
                raise PredictionFailed(f"descriptor {d.name!r} {d.fields()}: from_wire: {exc!r}") from exc
        with self._predictor_lock:
            if self._predict_batch is not None:
                try:
                    answers = list(self._predict_batch(converted))
                except Exception as exc:
                    raise PredictionFailed(f"predict_batch of {len(converted)} descriptors: {exc!r}") from exc
            else:
                answers = []
                for d, desc in zip(descs, converted, strict=True):
                    try:
                        answers.append(self.predictor.predict(desc))
                    except Exception as exc:
                        raise PredictionFailed(f"descriptor {d.name!r} {d.fields()}: {exc!r}") from exc
        if len(answers) != len(descs):
            raise PredictionFailed(f"predictor gave {len(answers)} answers for {len(descs)} descriptors")
        out = []
        for d, answer in zip(descs, answers, strict=True):
            duration_ns = int(round(answer.duration_ns))
            if duration_ns < 0:
                raise PredictionFailed(f"descriptor {d.name!r}: negative duration {answer.duration_ns}")
            try:
                model = wire.model_code(str(answer.model))
            except ValueError as exc:
                raise PredictionFailed(f"descriptor {d.name!r}: {exc}") from exc
            out.append((duration_ns, model))
        return out

    def flush(self) -> int:
        return self.cache.flush()

    def snapshot(self) -> ServiceStats:
        with self._stats_lock:
            return dataclasses.replace(self.stats)
