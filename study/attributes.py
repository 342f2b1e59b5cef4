"""Names of the user attributes every trial carries, read back by the constraint, export,
dashboard notes, figures and report; and which trial states count as finished."""

from optuna.trial import TrialState

AU_FA_FR = "au_fa_fr"  # best validation au_fa_fr so far; the deployed model's when complete
BAR = "au_fa_fr_bar"
FEASIBLE = "feasible"
PRUNED_REASON = "pruning_reason"
FAIL_REASON = "fail_reason"  # why a trial failed; absent when its worker died first
REQUEUED_FROM = "requeued_from"  # number of the interrupted trial whose parameters this reruns
FEATURE_KEY = "feature_key"  # study attribute: the feature cache key, the data's identity
UNMEASURED_AU_FA_FR = 1.0  # recorded for a trial skipped before training
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # count towards --trials; plotted
