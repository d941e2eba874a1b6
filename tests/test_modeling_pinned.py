"""Output values of the shipped checkpoints, pinned as numbers: any change to the model code (module layout, weight
names, attention path, initialisation, output plumbing) that changes what a shipped checkpoint computes fails here.

The expected numbers were generated once from the model code as it was before the issue-19 refactor and written in
as literals; they must never be regenerated to make a refactor pass.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
import torch

from gexbert_hf.configuration_gexbert import LEVEL_OFFSET, MASK_LEVEL_ID, MISSING_LEVEL_ID, PAD_LEVEL_ID

CHECKPOINTS = ("tcga31-mirna", "tcga13-mrna")
ROWS, LENGTH, PADDED_FROM = 4, 50, (50, 50, 35, 20)
POSITION = 7  # a token that is MASK in row 1, measured in the others
ATOL = 1e-6


def pinned_inputs(config) -> dict[str, torch.Tensor]:
    """4 x 50 tokens from a fixed generator: CLS first, distinct genes per row, levels, MASK and MISSING tokens,
    and rows padded from 35 and 20."""
    generator = torch.Generator().manual_seed(19)
    input_ids = torch.zeros(ROWS, LENGTH, dtype=torch.long)
    level_ids = torch.randint(LEVEL_OFFSET, LEVEL_OFFSET + config.num_levels, (ROWS, LENGTH), generator=generator)
    values = torch.randn(ROWS, LENGTH, generator=generator)
    attention_mask = torch.zeros(ROWS, LENGTH, dtype=torch.long)
    for row, end in enumerate(PADDED_FROM):
        genes = 2 + torch.randperm(config.vocab_size - 2, generator=generator)[: end - 1]
        input_ids[row, 0], input_ids[row, 1:end] = config.cls_token_id, genes
        attention_mask[row, :end] = 1
    level_ids[:, 0] = PAD_LEVEL_ID  # the CLS token carries no level
    level_ids[1, [POSITION, 11, 12, 30]] = MASK_LEVEL_ID
    level_ids[3, [2, 9]] = MASK_LEVEL_ID
    level_ids[2, [5, 6]] = MISSING_LEVEL_ID
    level_ids[attention_mask == 0] = PAD_LEVEL_ID
    values[attention_mask == 0] = 0.0
    return {"input_ids": input_ids, "level_ids": level_ids, "values": values, "attention_mask": attention_mask}


@cache
def all_outputs(name: str) -> dict[str, torch.Tensor]:
    """Every output of checkpoint `name` on `pinned_inputs` that the tests read: the masked-expression model in both
    layouts, its encoder's hidden states and attentions, fine-tuning heads and a freshly initialised model."""
    from gexbert_hf import GexBertForMaskedExpression, GexBertForSequenceClassification, GexBertForSurvival
    from gexbert_hf.loading import load_model_and_tokenizer
    from gexbert_hf.training.finetune import load_head_model

    model, _ = load_model_and_tokenizer(name)
    inputs = pinned_inputs(model.config)
    with torch.no_grad():
        outputs = model(**inputs)
        encoded = model.gexbert(**inputs, output_hidden_states=True, output_attentions=True)
        model.config.encoder_skips_queries = True
        asymmetric = model(**inputs)
        model.config.encoder_skips_queries = False
        classifier = load_head_model(name, GexBertForSequenceClassification, seed=0, num_labels=3).eval()
        survival = load_head_model(name, GexBertForSurvival, seed=0).eval()
        torch.manual_seed(0)
        fresh = GexBertForMaskedExpression(model.config).eval()
        fresh_outputs = fresh(**inputs)
        return {
            "level_logits": outputs.level_logits,
            "value_predictions": outputs.value_predictions,
            "pooler_output": outputs.pooler_output,
            "last_hidden_state": encoded.last_hidden_state,
            "hidden_state_2": encoded.hidden_states[2],
            "hidden_state_last": encoded.hidden_states[-1],
            "attentions_1": encoded.attentions[1],
            "asymmetric_level_logits": asymmetric.level_logits,
            "asymmetric_pooler_output": asymmetric.pooler_output,
            "classifier_logits": classifier(**inputs).logits,
            "survival_risk": survival(**inputs).risk,
            "fresh_level_logits": fresh_outputs.level_logits,
            "fresh_pooler_output": fresh_outputs.pooler_output,
        }


def pinned_slices(name: str) -> dict[str, torch.Tensor]:
    """The few numbers of each output that are pinned."""
    out = all_outputs(name)
    return {
        "level_logits": out["level_logits"][:, POSITION, :2],
        "value_predictions": out["value_predictions"][:, POSITION],
        "pooler_output": out["pooler_output"][:, :2],
        "last_hidden_state": out["last_hidden_state"][:, 3, :2],
        "hidden_state_2": out["hidden_state_2"][:, 3, :2],
        "hidden_state_last": out["hidden_state_last"][:, 3, :2],  # the last layer's output before the final norm
        "attentions_1": out["attentions_1"][:, 0, 3, :2],
        "asymmetric_level_logits": out["asymmetric_level_logits"][:, POSITION, :2],
        "asymmetric_pooler_output": out["asymmetric_pooler_output"][:, :2],
        "classifier_logits": out["classifier_logits"],
        "survival_risk": out["survival_risk"],
        "fresh_level_logits": out["fresh_level_logits"][:, POSITION, :2],
        "fresh_pooler_output": out["fresh_pooler_output"][:, :2],
    }


EXPECTED: dict[str, dict[str, list[float]]] = {
    "tcga31-mirna": {
        "level_logits": [6.82464599609375, -1.540218472480774, -1.067445993423462, -6.976138591766357, 7.171905040740967, -2.0184688568115234, 6.058108806610107, -0.4445641040802002],
        "value_predictions": [-0.08524923026561737, 0.3997028172016144, 0.1773766577243805, -0.10812470316886902],
        "pooler_output": [0.0025991005823016167, -0.22493833303451538, 0.26166167855262756, 0.11698541790246964, -0.09477799385786057, 0.03915110230445862, 0.18339088559150696, -0.48955896496772766],
        "last_hidden_state": [-1.0868806838989258, 1.1402174234390259, -0.4639059901237488, -1.2796311378479004, -0.6816943287849426, -0.4326097369194031, -0.46199995279312134, -0.3119967579841614],
        "hidden_state_2": [-2.6640396118164062, 1.1250989437103271, -1.9229258298873901, -2.127671718597412, -0.7319204807281494, -0.9607294201850891, -1.1588854789733887, -0.3048342764377594],
        "hidden_state_last": [-1.801719307899475, 1.8184714317321777, -0.638514518737793, -1.553080439567566, -0.9938710927963257, -0.5705811381340027, -0.7371206283569336, -0.4633404016494751],
        "attentions_1": [0.0047768764197826385, 0.008831328712403774, 0.0051327962428331375, 0.013524563051760197, 0.011178841814398766, 0.00880151055753231, 0.02022155374288559, 0.03881758823990822],
        "asymmetric_level_logits": [6.82464599609375, -1.540218472480774, 1.6439532041549683, -8.400367736816406, 7.171905040740967, -2.0184688568115234, 6.360711097717285, -0.5404894948005676],
        "asymmetric_pooler_output": [0.0025991005823016167, -0.22493833303451538, 0.24536187946796417, 0.11277755349874496, -0.09477799385786057, 0.03915110230445862, 0.20053136348724365, -0.4300892949104309],
        "classifier_logits": [-0.1454467475414276, 0.08364162594079971, 0.09265781939029694, -0.1576491743326187, -0.07237402349710464, -0.05289911478757858, -0.08876579999923706, 0.010562412440776825, 0.027877673506736755, -0.15392667055130005, -0.025251086801290512, 0.04817214235663414],
        "survival_risk": [-0.1454467475414276, -0.1576491743326187, -0.08876577019691467, -0.15392667055130005],
        "fresh_level_logits": [-0.32493025064468384, -0.05395220220088959, 0.1386939287185669, -0.2962625026702881, 0.13401536643505096, -0.03760676085948944, 0.2525695860385895, 0.10014744102954865],
        "fresh_pooler_output": [0.2341945469379425, 0.12018535286188126, 0.07055143266916275, 0.049487099051475525, 0.11149392277002335, -0.21959806978702545, 0.3884177803993225, -0.09259510040283203],
    },
    "tcga13-mrna": {
        "level_logits": [-4.857406139373779, -2.09198260307312, -7.100445747375488, -5.97422981262207, -5.7938408851623535, -6.407935619354248, -4.441948413848877, -2.30914306640625],
        "value_predictions": [-0.4635501801967621, 1.8368985652923584, 0.15893696248531342, 0.7733786702156067],
        "pooler_output": [-0.09119125455617905, 0.307260662317276, -0.2601017653942108, 0.45071184635162354, 0.2508794367313385, 0.334109365940094, 0.08162141591310501, 0.42013049125671387],
        "last_hidden_state": [-0.6472962498664856, -1.6041171550750732, -1.6435513496398926, 1.57466459274292, -0.44698190689086914, 3.4708738327026367, 0.5863284468650818, 2.188636541366577],
        "hidden_state_2": [-0.5586450695991516, -1.872680425643921, -1.1105749607086182, 1.0430259704589844, 0.27883413434028625, 3.305391311645508, 0.24904340505599976, 2.1712305545806885],
        "hidden_state_last": [-1.0223933458328247, -2.309647560119629, -2.29304575920105, 1.7725856304168701, -0.7556529641151428, 5.095988750457764, 0.8661019802093506, 2.554960012435913],
        "attentions_1": [0.00022958742920309305, 0.00795938540250063, 0.0005421152454800904, 0.03637590631842613, 0.0014585539465770125, 0.004789679776877165, 0.0009260941878892481, 0.02378319390118122],
        "asymmetric_level_logits": [-4.857406139373779, -2.09198260307312, -5.720696926116943, -3.3533318042755127, -5.7938408851623535, -6.407935619354248, -4.075962543487549, -1.9870857000350952],
        "asymmetric_pooler_output": [-0.09119125455617905, 0.307260662317276, -0.24698583781719208, 0.451431006193161, 0.2508794367313385, 0.334109365940094, 0.06132671236991882, 0.3056846559047699],
        "classifier_logits": [-0.019598573446273804, 0.0005818605422973633, -0.11993162333965302, -0.05409733206033707, 0.01800088956952095, -0.06651399284601212, -0.01407274603843689, 0.03651333600282669, -0.003460814245045185, -0.011190205812454224, 0.03051377460360527, -0.09417705237865448],
        "survival_risk": [-0.019598588347434998, -0.05409732460975647, -0.014072731137275696, -0.011190205812454224],
        "fresh_level_logits": [0.09467728435993195, 0.22765828669071198, -0.08743457496166229, -0.23470842838287354, 0.388569712638855, 0.6123304963111877, -0.46315836906433105, -0.15300391614437103],
        "fresh_pooler_output": [0.15787550806999207, 0.12258171290159225, 0.2008715122938156, -0.20366676151752472, -0.14903485774993896, 0.04436333104968071, 0.22385022044181824, -0.11754008382558823],
    },
}


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_shipped_checkpoint_outputs_are_pinned(name):
    got = pinned_slices(name)
    assert set(got) == set(EXPECTED[name])
    for key, expected in EXPECTED[name].items():
        torch.testing.assert_close(got[key].flatten(), torch.tensor(expected), rtol=0, atol=ATOL, msg=key)


# ----------------------------------------------------------------------------------------------------------------------
# imputation of a small real matrix
# ----------------------------------------------------------------------------------------------------------------------
IMPUTE_SAMPLES = 6


@cache
def imputed(data_dir: str = "/work/shared/data") -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """`impute` with the shipped tcga31-mirna on its first 6 tumours, a seeded 10% of the values knocked out."""
    from pathlib import Path

    from gexbert_hf import impute
    from gexbert_hf.loading import load_model_and_tokenizer

    path = Path(data_dir) / "tcga31_mirna_log2rpm" / "expression.tsv.gz"
    frame = pd.read_csv(path, sep="\t", index_col=0, usecols=range(IMPUTE_SAMPLES + 1)).T
    masked = np.random.default_rng(19).random(frame.shape) < 0.1
    model, tokenizer = load_model_and_tokenizer("tcga31-mirna")
    filled, uncertainty = impute(model, tokenizer, frame.mask(masked))
    return filled, uncertainty, masked


def impute_slices(filled: pd.DataFrame, uncertainty: pd.DataFrame, masked: np.ndarray) -> dict[str, list[float]]:
    rows, columns = np.nonzero(masked)
    return {"filled": [float(filled.iat[r, c]) for r, c in zip(rows[:8], columns[:8])],
            "uncertainty": [float(uncertainty.iat[r, c]) for r, c in zip(rows[:8], columns[:8])],
            "filled_sum": [float(filled.to_numpy()[masked].sum())]}


EXPECTED_IMPUTE: dict[str, list[float]] = {
    "filled": [13.865848923887173, 0.3101925009812081, 0.30057486423793606, 7.254865264734378, 2.6571241180353726, 0.15062048459107416, 0.031439167847298645, 0.12010853172938105],
    "uncertainty": [0.5835050905132679, 0.33405540918439103, 0.33772903010653604, 1.755370477451214, 0.8394384207732983, 0.22706069888919328, 0.12130391593467403, 0.22133084113791016],
    "filled_sum": [1219.5106660247748],
}


def test_imputation_of_a_real_matrix_is_pinned(shared_data_dir):
    filled, uncertainty, masked = imputed(str(shared_data_dir))
    original = pd.read_csv(shared_data_dir / "tcga31_mirna_log2rpm" / "expression.tsv.gz", sep="\t", index_col=0,
                           usecols=range(IMPUTE_SAMPLES + 1)).T
    np.testing.assert_array_equal(filled.to_numpy()[~masked], original.to_numpy()[~masked])  # measured values kept
    got = impute_slices(filled, uncertainty, masked)
    for key, expected in EXPECTED_IMPUTE.items():
        np.testing.assert_allclose(got[key], expected, rtol=1e-6 if key == "filled_sum" else 0, atol=ATOL,
                                   err_msg=key)
