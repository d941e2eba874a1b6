"""The linear probe as the classifier's starting point (LP-FT): logistic regression on the frozen model's
classifier features, copied into the head before any gradient step.

Fine-tuning a fresh head end to end from a pretrained GexBERT landed below a linear probe of the same model (panel +
restored values -> LR) on tcga31 at every panel size (reports/benchmark/tcga31_mirna_log2rpm/release_classification):
the randomly initialised head sends large, noisy gradients into the encoder before it knows anything. Starting from
the probe's own solution, fine-tuning only has to improve on it; the caller keeps the probe where no epoch does
(Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features", LP-FT).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

# inverse L2 strengths tried on validation (the study's LR grid spans the same range)
PROBE_C_GRID = (0.01, 0.1, 1.0)
# a class the training samples lack gets this much less than the lowest fitted bias: predicted only by fine-tuning
ABSENT_CLASS_OFFSET = 10.0
# the MLP branch's training on cached features (AdamW, minibatches, early stopping on validation macro-F1)
MLP_LEARNING_RATE = 1e-3
MLP_WEIGHT_DECAY = 0.01
MLP_BATCH_SIZE = 128
MLP_MAX_EPOCHS = 100
MLP_PATIENCE = 10


@torch.no_grad()
def classifier_inputs(head, loader) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels) of every sample `loader` yields: what `head.classifier` reads, before standardisation
    buffers apply (features are taken with the identity standardisation), in eval mode."""
    was_training = head.training
    head.eval()
    shift, scale = _standardisation(head)
    features, labels = [], []
    try:
        for batch in loader:
            batch = {key: value.to(head.device) for key, value in batch.items() if torch.is_tensor(value)}
            outputs = head._encode(batch["input_ids"], batch["level_ids"], batch.get("values"),
                                   batch.get("attention_mask"), False, False)
            standardised = head.classifier_features(outputs, batch["input_ids"], batch["level_ids"],
                                                    batch.get("values"), batch.get("attention_mask")).float()
            features.append((standardised * scale + shift).cpu().numpy().astype(np.float64))
            labels.append(batch["labels"].cpu().numpy())
    finally:
        head.train(was_training)
    return np.concatenate(features), np.concatenate(labels)


def _standardisation(head) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's feature shift and scale (identity for a head that reads the pooled embedding only)."""
    if hasattr(head, "feature_scale"):
        return head.feature_shift.float(), head.feature_scale.float()
    width = head.classifier.in_features
    return torch.zeros(width, device=head.device), torch.ones(width, device=head.device)


def fit_probe_head(head, train_loader, validation_loader, seed: int = 0) -> dict:
    """Fit LR on the frozen features of the training samples (L2 strength chosen by validation macro-F1 over
    `PROBE_C_GRID`) and copy it into `head`: its standardisation buffers (where it has them) and `classifier`.
    Returns what was chosen, for the training history."""
    x_train, y_train = classifier_inputs(head, train_loader)
    x_validation, y_validation = classifier_inputs(head, validation_loader)
    shift, scale = x_train.mean(0), x_train.std(0)
    varying = scale > 1e-8
    scale = np.where(varying, scale, 1.0)
    if not hasattr(head, "feature_scale"):  # nothing to hold a standardisation: fold it into the weights
        shift, scale = np.zeros_like(shift), np.ones_like(scale)
        varying = np.ones_like(varying)
    z_train = ((x_train - shift) / scale)[:, varying]
    z_validation = ((x_validation - shift) / scale)[:, varying]
    scores = {}
    fitted = {}
    for c in PROBE_C_GRID:
        model = _logistic_regression(c, seed).fit(z_train, y_train)
        scores[c] = float(f1_score(y_validation, model.predict(z_validation), average="macro"))
        fitted[c] = model
    chosen = max(PROBE_C_GRID, key=lambda c: (scores[c], -c))  # ties: the stronger penalty
    _copy_into_head(head, fitted[chosen], shift, scale, varying)
    summary = {"probe_C": chosen, "probe_validation_macro_f1": scores}
    if hasattr(head, "classifier_mlp"):
        linear = _linear_logits(fitted[chosen], head.classifier.out_features)
        summary.update(fit_mlp_branch(head, z_train, y_train, z_validation, y_validation, linear, varying, seed,
                                      probe_score=scores[chosen]))
    predicted = _head_logits(head, (x_validation - shift) / scale).argmax(1)
    summary["validation"] = {"accuracy": float((predicted == y_validation).mean()),
                             "macro_f1": float(f1_score(y_validation, predicted, average="macro"))}
    return summary


@torch.no_grad()
def _head_logits(head, standardised: np.ndarray) -> np.ndarray:
    """The head's logits on standardised features (eval mode: no dropout), without running the encoder again."""
    was_training = head.training
    head.eval()
    features = torch.as_tensor(standardised, dtype=head.classifier.weight.dtype, device=head.classifier.weight.device)
    logits = head.classifier(features)
    if hasattr(head, "classifier_mlp"):
        logits = logits + head.classifier_mlp(features)
    head.train(was_training)
    return logits.float().cpu().numpy()


def _linear_logits(model: LogisticRegression, classes: int):
    """Logits of the fitted probe as the head computes them (every class code, absent ones far below)."""
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    weight = np.zeros((classes, coef.shape[1]))
    bias = np.full(classes, intercept.min() - ABSENT_CLASS_OFFSET)
    weight[model.classes_.astype(int)] = coef
    bias[model.classes_.astype(int)] = intercept
    return lambda z: z @ weight.T + bias


def fit_mlp_branch(head, z_train: np.ndarray, y_train: np.ndarray, z_validation: np.ndarray,
                   y_validation: np.ndarray, linear, varying: np.ndarray, seed: int, probe_score: float,
                   max_epochs: int = MLP_MAX_EPOCHS, patience: int = MLP_PATIENCE) -> dict:
    """Train the head's MLP branch on the cached frozen features, beside the fixed probe logits, keeping the epoch of
    best validation macro-F1; its output layer starts at zero, so no epoch that beats the probe means the probe.
    Cheap: the encoder does not run, and only the varying feature columns enter."""
    torch.manual_seed(seed)
    branch = head.classifier_mlp
    hidden, classes = branch[0].out_features, branch[-1].out_features
    mlp = torch.nn.Sequential(torch.nn.Linear(int(varying.sum()), hidden), torch.nn.GELU(),
                              torch.nn.Dropout(branch[2].p), torch.nn.Linear(hidden, classes))
    torch.nn.init.zeros_(mlp[-1].weight)
    torch.nn.init.zeros_(mlp[-1].bias)
    x = torch.as_tensor(z_train, dtype=torch.float32)
    offset = torch.as_tensor(linear(z_train), dtype=torch.float32)
    y = torch.as_tensor(y_train, dtype=torch.long)
    x_val = torch.as_tensor(z_validation, dtype=torch.float32)
    offset_val = torch.as_tensor(linear(z_validation), dtype=torch.float32)
    optimizer = torch.optim.AdamW(mlp.parameters(), lr=MLP_LEARNING_RATE, weight_decay=MLP_WEIGHT_DECAY)
    generator = torch.Generator().manual_seed(seed)
    best, best_state, best_epoch, waited = probe_score, _state(mlp), 0, 0
    for epoch in range(1, max_epochs + 1):
        mlp.train()
        for rows in torch.randperm(len(x), generator=generator).split(MLP_BATCH_SIZE):
            loss = torch.nn.functional.cross_entropy(offset[rows] + mlp(x[rows]), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        mlp.eval()
        with torch.no_grad():
            predicted = (offset_val + mlp(x_val)).argmax(1).numpy()
        score = float(f1_score(y_validation, predicted, average="macro"))
        if score > best:
            best, best_state, best_epoch, waited = score, _state(mlp), epoch, 0
        else:
            waited += 1
            if waited >= patience:
                break
    mlp.load_state_dict(best_state)
    with torch.no_grad():
        first = torch.zeros_like(branch[0].weight)
        first[:, torch.as_tensor(np.flatnonzero(varying))] = mlp[0].weight.to(first.dtype)
        branch[0].weight.copy_(first)
        branch[0].bias.copy_(mlp[0].bias)
        branch[-1].weight.copy_(mlp[-1].weight)
        branch[-1].bias.copy_(mlp[-1].bias)
    return {"mlp_epochs": best_epoch, "mlp_validation_macro_f1": best}


def start_from_probe(model, tokenizer, train, validation, panel_ids=None, query_ids=None, batch_size: int = 64,
                     seed: int = 0) -> dict:
    """The recipe's first stage for the stock `Trainer` path: fit `model`'s head (a
    `GexBertForSequenceClassification`, best with `classifier_reads_values`) as the linear probe, and its MLP branch,
    on `train` / `validation` (tokenized datasets or `EncodedSamples` carrying `labels`), read as the evaluation
    collator reads them; then hand `model` to `Trainer` with a small learning rate."""
    from ..data.collator import DataCollatorForExpressionFinetuning
    from .trainer import RowDataset

    collator = DataCollatorForExpressionFinetuning(tokenizer, panel_ids=panel_ids, query_ids=query_ids, seed=1)

    def loader(samples):
        return torch.utils.data.DataLoader(RowDataset(samples), batch_size=batch_size, collate_fn=collator)

    return fit_probe_head(model, loader(train), loader(validation), seed=seed)


def _state(module: torch.nn.Module) -> dict:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def _logistic_regression(c: float, seed: int) -> LogisticRegression:
    import warnings

    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter bounds the cost; validation judges
    return LogisticRegression(C=c, max_iter=500, random_state=seed)


@torch.no_grad()
def _copy_into_head(head, model: LogisticRegression, shift: np.ndarray, scale: np.ndarray,
                    varying: np.ndarray) -> None:
    """LR coefficients (on the varying standardised columns) -> `head.classifier`, classes by their codes."""
    classifier = head.classifier
    weight = np.zeros((classifier.out_features, classifier.in_features))
    bias = np.full(classifier.out_features, -np.inf)
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:  # one decision function: class 1 against class 0
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    columns = np.flatnonzero(varying)
    for row, label in enumerate(model.classes_):
        weight[int(label), columns] = coef[row]
        bias[int(label)] = intercept[row]
    bias[np.isinf(bias)] = intercept.min() - ABSENT_CLASS_OFFSET
    classifier.weight.copy_(torch.as_tensor(weight, dtype=classifier.weight.dtype))
    classifier.bias.copy_(torch.as_tensor(bias, dtype=classifier.bias.dtype))
    if hasattr(head, "feature_scale"):
        head.feature_shift.copy_(torch.as_tensor(shift, dtype=head.feature_shift.dtype))
        head.feature_scale.copy_(torch.as_tensor(scale, dtype=head.feature_scale.dtype))


__all__ = ["PROBE_C_GRID", "classifier_inputs", "fit_mlp_branch", "fit_probe_head", "start_from_probe"]
