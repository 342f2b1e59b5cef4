"""Names of the user attributes every trial carries, read back by the constraint, export,
dashboard notes, figures and report; and which trials count toward ``--trials``."""

from optuna.trial import FrozenTrial, TrialState

# Best validation au_fa_fr so far; when complete, the deployed model's, and for a trial that
# met the bar on its first seed the mean over its confirmation seeds (AU_FA_FR_SEEDS).
AU_FA_FR = "au_fa_fr"
AU_FA_FR_SEEDS = "au_fa_fr_seeds"  # the deployed model's validation au_fa_fr per seed
# A completed trial's AU_FA_FR_SEEDS mean plus its standard error (study.objective.
# au_fa_fr_upper), the worse of its confirmation seeds' and its fresh seeds' where it had
# both: what FEASIBLE, the constraint and the value judge it on.
AU_FA_FR_UPPER = "au_fa_fr_upper"
# Figures on the seeds after the confirmation seeds, of a trial that would have become the
# best (also at the end of AU_FA_FR_SEEDS).
AU_FA_FR_FRESH_SEEDS = "au_fa_fr_fresh_seeds"
CONFIRMATION_EPOCHS = "confirmation_epochs"  # epochs trained so far on each confirmation seed
AU_FA_FR_PER_EPOCH = "au_fa_fr_per_epoch"  # validation au_fa_fr of each epoch, first seed
BAR = "au_fa_fr_bar"
SCORE = "score"  # the deployed architecture's compression score, known before training
FEASIBLE = "feasible"
PRUNED_REASON = "pruning_reason"
FAIL_REASON = "fail_reason"  # why a trial failed; absent when its worker died first
REQUEUED_FROM = "requeued_from"  # number of the interrupted trial whose parameters this reruns
FEATURE_KEY = "feature_key"  # study attribute: the feature cache key, the data's identity
UNMEASURED_AU_FA_FR = 1.0  # recorded for a trial skipped before training
SKIPPED = "skipped"  # True for a proposal that could not win or is below the floors; never trained
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # plotted; count toward --trials unless skipped


def trained(trial: FrozenTrial) -> bool:
    """Whether the trial trained at least one epoch (a skipped one did not, whenever it ran)."""
    return bool(trial.user_attrs.get(AU_FA_FR_PER_EPOCH))


def counts_toward_budget(trial: FrozenTrial) -> bool:
    """A finished trial that trained: what ``--trials N`` counts (skipped ones do not)."""
    return trial.state in FINISHED and trained(trial)
