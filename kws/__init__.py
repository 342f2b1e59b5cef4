"""kws: keyword-spotting data, features, models, metric and compression measures.

Data flows one way: audio -> features -> model -> training -> metric/compression.
Nothing in this package imports ``study``.
"""
