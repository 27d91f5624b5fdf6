"""Renderers over the result model: each output format is a function of the model, never a method on it."""
