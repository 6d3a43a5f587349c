"""Human ratings: blind pairwise votes and Likert scores as records, and the statistics computed from them.

records.py   the rating axes (a registry), filters, votes and scores as pandas frames, JSONL/CSV in and out
sampling.py  which pair of models to show next (pairs with few votes first)
arena.py     open a blind pair or a single reply with live models, continue it, judge it
bt.py        Bradley-Terry scores on the Elo scale with bootstrap intervals
combined.py  one Bradley-Terry ranking over blind votes, chat preferences and judge votes (a weight per source,
             length as a style covariate, bootstrap over raters)
ppi.py       prediction-powered scores: automatic scores on every item corrected by the human ratings
agreement.py Krippendorff's alpha between raters
leaderboard.py  the aggregates (table, win rates, Likert means), computed from records only
plots.py     matplotlib figures with error bars for the Leaderboard tab
cli.py       `rp-eval ratings leaderboard|export`
hub_sync.py  optional push of the ratings to a Hugging Face dataset (a Space's ratings survive a restart)
"""
