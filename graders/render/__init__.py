"""Renderers over the result model: each format is a function of the model, never a method on it."""
