"""The core every component builds on: token counts, prices, usage, the text index.

Each module is imported on its own (`langchain_tokenopt.core.tokens`, ...), so a
component pays only for what it uses: counting tokens never imports scikit-learn.
"""
