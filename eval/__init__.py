"""`python -m eval`: the model card's table for any models on any datasets.

`eval.run` transcribes corpora resumably, `eval.scores` computes the card's scores and intervals, `eval.report`
writes the table and plot, and `eval.cli` reads the command line.
"""
