"""`evaluate` metric module for the paper's numbers: `evaluate.load("training/ovmlv_metrics")`, no Hub needed.

The math lives in the sibling `functional.py`, which `evaluate.load` copies along with this script because it is a
same-folder relative import; keep it that way (an absolute `training...` import would break the copied script).
"""

import datasets
import evaluate

from .functional import multilabel_report, top_k_accuracy

_CITATION = """\
@inproceedings{gupta2024ovmlv,
  title     = {Open Vocabulary Multi-Label Video Classification},
  author    = {Gupta, Rohit and Rizve, Mamshad Nayeem and Unnikrishnan, Jayakrishnan and Tawari, Ashish and
               Tran, Son and Shah, Mubarak and Yao, Benjamin and Chilimbi, Trishul},
  booktitle = {European Conference on Computer Vision (ECCV)},
  year      = {2024}
}
"""

_DESCRIPTION = """\
Open-vocabulary video classification metrics (Gupta et al., ECCV 2024). The input kind picks the metric:
multi-label references (one 0/1 vector per video) give macro/micro AUPR, peak F1 with its oracle threshold and,
given a threshold, F1/precision/recall at it; single-label references (one class index per video) give top-k
accuracy, as for zero-shot UCF101, HMDB51 and Kinetics-600.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): per video, a score for every class (C scores).
    references (`list` of `list` of `int`, or `list` of `int`): per video, a 0/1 label for every class
        (multi-label), or the index of its one class (single-label).
    threshold (`float`, optional): multi-label only; the deployment threshold to report F1/precision/recall at.
    k (`tuple` of `int`, default `(1, 5)`): single-label only; the k of each top-k accuracy.
Returns:
    multi-label: aupr_macro, aupr_micro, skipped_classes (classes without positives, left out of the macro
        mean), peak_f1, peak_f1_threshold, and with `threshold`: threshold, f1, precision, recall.
    single-label: top_{k}_accuracy for each k.
Examples:
    >>> metric = evaluate.load("training/ovmlv_metrics")
    >>> metric.compute(predictions=[[0.9, 0.2], [0.4, 0.7]], references=[[1, 0], [0, 1]], threshold=0.5)["f1"]
    1.0
    >>> metric.compute(predictions=[[0.9, 0.2], [0.4, 0.7]], references=[0, 0], k=(1,))
    {'top_1_accuracy': 0.5}
"""

_SCORES = datasets.Sequence(datasets.Value("float32"))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class OvmlvMetrics(evaluate.Metric):
    """AUPR / peak F1 for multi-label references, top-k accuracy for single-label ones."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # evaluate picks the first feature set the first example encodes with: a list of labels, or one int.
            features=[
                datasets.Features({"predictions": _SCORES, "references": datasets.Sequence(datasets.Value("int32"))}),
                datasets.Features({"predictions": _SCORES, "references": datasets.Value("int32")}),
            ],
        )

    def _compute(
        self,
        predictions: list[list[float]],
        references: list[list[int]] | list[int],
        threshold: float | None = None,
        k: tuple[int, ...] = (1, 5),
    ) -> dict[str, float]:
        if references and isinstance(references[0], int):
            return {f"top_{i}_accuracy": top_k_accuracy(references, predictions, i) for i in k}
        return multilabel_report(references, predictions, threshold)
