"""Statistical inference on MadMiner's expected likelihoods, kept apart by concern (as pyhf's ``infer``):

- :mod:`.limits`: ``ConsistentAsymptoticLimits``, MadMiner's ``AsymptoticLimits`` with the three changes
  of :mod:`.asimov` (Asimov data consistent with the histogram model), :mod:`.sallino` (SALLY's histograms
  as a likelihood ratio) and :mod:`.calibration` (a ratio estimator's normalisation);
- :mod:`.levels`: the confidence levels and their thresholds;
- :mod:`.intervals`: best fits and profiled intervals read quadratically between grid points;
- :mod:`.scan`: coarse-to-fine scans until the interval ends converge;
- :mod:`.quality`: the numbers that say whether a method's limits can be trusted.
"""
