"""Rebuilds a model from a checkpoint written by `maam models train` / `distill` and exports it into the model
repository (`maam models export-trained`, and `--install` after training)."""

from __future__ import annotations

from pathlib import Path

from services.models.errors import ModelsError
from services.models.research.training import load_checkpoint


def export_checkpoint(checkpoint: Path, repository: Path, name: str, *, head: str | None = None,
                      task: str | None = None) -> dict[str, float]:
    """Exports the checkpoint's model as `name` (ALBEF: `name`_image and `name`_text); returns the ONNX vs
    torch max abs diff of each model written."""
    data = load_checkpoint(checkpoint)
    kind, config, state = data["kind"], data["config"], data["state_dict"]
    if kind == "memefier":
        from services.models.research.memefier.config import MemefierConfig
        from services.models.research.memefier.export import export_memefier
        from services.models.research.memefier.train import build

        model = build(MemefierConfig.model_validate(config), data.get("caption_words") or None,
                      int(data.get("caption_len") or 0))
        model.load_state_dict(state)
        return {name: export_memefier(repository, model, name, head=head, task=task)}
    if kind == "mvsd":
        from services.models.research.mvsd.config import MvsdConfig
        from services.models.research.mvsd.export import export_mvsd
        from services.models.research.mvsd.model import MVSD

        mvsd_config = MvsdConfig.model_validate(config)
        model = MVSD(mvsd_config.architecture)
        model.load_state_dict(state)
        return {name: export_mvsd(repository, model, name, clip_frames=mvsd_config.training.clip_frames)}
    if kind == "albef":
        from services.models.research.albef.config import AlbefConfig
        from services.models.research.albef.export import export_albef
        from services.models.research.albef.model import AlbefEncoders

        albef_config = AlbefConfig.model_validate(config)
        if albef_config.training.vocab_file is None:
            raise ModelsError("the ALBEF checkpoint's config names no vocab_file")
        model = AlbefEncoders(albef_config.architecture)
        model.load_state_dict(state)
        return export_albef(repository, model, name, albef_config.training.vocab_file, source="trained",
                            description="ALBEF (ITC fine-tuned)")
    if kind == "indistill":
        from services.models.research.indistill.export import export_classifier
        from services.models.research.indistill.networks import build_student

        net = build_student(config["student"], tuple(config["labels"]), int(config["input_size"]))
        net.mean, net.std = tuple(config["mean"]), tuple(config["std"])
        net.module.load_state_dict(state)
        net.module.eval()
        return {name: export_classifier(
            repository, net, name, task=task or config["task"], positive_labels=tuple(config.get("positive", ())),
            description=f"{config['student']} distilled from {config['teacher']} ({config['method']})",
            license=config.get("license", ""),
        )}
    raise ModelsError(f"{checkpoint}: unknown model kind {kind!r}")
