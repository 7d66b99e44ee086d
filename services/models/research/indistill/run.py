"""One `maam models distill` run: teacher, student, images of a directory, InDistill (or plain KD), a
checkpoint the student can be installed from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.models.research.indistill.distill import DistillSettings, indistill, plain_kd
from services.models.research.indistill.networks import build_student, parameters
from services.models.research.indistill.photos import as_tensor, read_directory
from services.models.research.indistill.teachers import NSFWJS, TASKS, load_teacher
from services.models.research.training import save_checkpoint, seed_everything

KIND = "indistill"


@dataclass(frozen=True)
class DistillResult:
    checkpoint: Path
    summary: dict[str, Any]


def distill_directory(
    teacher_spec: str, student_spec: str, data: Path, *, steps: int, batch_size: int, learning_rate: float,
    plain: bool = False, labels_file: Path | None = None, task: str = "", output: Path = Path("var/research"),
    cache: Path | None = None, seed: int = 0,
) -> DistillResult:
    labels = tuple(x.strip() for x in labels_file.read_text().splitlines() if x.strip()) if labels_file else ()
    teacher = load_teacher(teacher_spec, labels=labels, cache=cache)
    seed_everything(seed)
    student = build_student(student_spec, teacher.labels, teacher.input_size)
    student.mean, student.std = teacher.mean, teacher.std  # the student takes the teacher's input
    images = as_tensor(read_directory(data), teacher.input_size)
    settings = DistillSettings(steps=steps, batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    if plain:
        logs = [plain_kd(teacher, student, images, settings)]
        layers: list[str] = []
    else:
        run = indistill(teacher, student, images, settings)
        logs, layers = run.logs, [f"{a.teacher}->{a.student} ({a.teacher_channels}->{a.student_channels})"
                                  for a in run.layers]
    default_task, positive = TASKS.get(teacher_spec, (task or "classification", ()))
    config = {
        "teacher": teacher_spec, "student": student_spec, "labels": list(teacher.labels),
        "input_size": teacher.input_size, "mean": list(teacher.mean), "std": list(teacher.std),
        "task": task or default_task, "positive": list(positive), "method": "plain-kd" if plain else "indistill",
        "license": "MIT (nsfwjs teacher)" if teacher_spec == NSFWJS else "",
    }
    name = f"{student_spec.replace(':', '_')}-{config['method']}.pt"
    checkpoint = save_checkpoint(Path(output) / "indistill" / name, KIND, config, student.module,
                                 losses=[x for log in logs for x in log.losses])
    summary = {"checkpoint": str(checkpoint), "images": int(images.shape[0]), "aligned_layers": layers,
               "teacher_parameters": parameters(teacher.module), "student_parameters": parameters(student.module),
               "phase_losses": [log.first_last(3) for log in logs]}
    return DistillResult(checkpoint, summary)
