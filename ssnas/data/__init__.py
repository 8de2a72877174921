"""Datasets as feature pyramids: synthetic (embedded), MM-IMDB, and the ssnas-features cache."""
